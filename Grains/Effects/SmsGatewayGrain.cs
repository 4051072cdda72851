using Microsoft.Extensions.Options;
using OrderFlow.Contracts;
using OrderFlow.Grains.Hosting;

namespace OrderFlow.Grains.Effects;

/// <summary>
/// One user's SMS gateway with the seed's weak check: a sent (order, kind) key lives for the dedupe window and is
/// held only in memory, capped in number (oldest evicted first) — the equivalent of a Redis key with an expiry.
/// Cheap effects get a cheap check; a duplicate after the window or after this activation is lost is acceptable.
/// </summary>
[GrainType("sms-gateway")]
public sealed class SmsGatewayGrain(IOptions<OrderMessagingOptions> options, TimeProvider clock) : Grain, ISmsGatewayGrain
{
    private readonly Dictionary<string, DateTimeOffset> _expiresAt = [];
    private readonly Queue<(string Key, DateTimeOffset ExpiresAt)> _byAge = new();
    private readonly Queue<SmsMessage> _sent = new();

    public Task<bool> SendAsync(string orderId, string kind, string text)
    {
        var now = clock.GetUtcNow();
        Evict(now);
        var key = $"{orderId}:{kind}";
        if (_expiresAt.TryGetValue(key, out var expiresAt) && expiresAt > now)
        {
            return Task.FromResult(false);
        }

        var expiry = now + options.Value.SmsDedupeWindow;
        _expiresAt[key] = expiry;
        _byAge.Enqueue((key, expiry));
        _sent.Enqueue(new SmsMessage(orderId, kind, text, now));
        while (_sent.Count > options.Value.SmsDedupeCapacity)
        {
            _sent.Dequeue();
        }

        return Task.FromResult(true);
    }

    public Task<IReadOnlyList<SmsMessage>> GetSentAsync() => Task.FromResult<IReadOnlyList<SmsMessage>>(_sent.ToArray());

    private void Evict(DateTimeOffset now)
    {
        var capacity = options.Value.SmsDedupeCapacity;
        while (_byAge.TryPeek(out var oldest) && (oldest.ExpiresAt <= now || _byAge.Count >= capacity))
        {
            _byAge.Dequeue();
            if (_expiresAt.TryGetValue(oldest.Key, out var current) && current == oldest.ExpiresAt)
            {
                _expiresAt.Remove(oldest.Key);
            }
        }
    }
}
