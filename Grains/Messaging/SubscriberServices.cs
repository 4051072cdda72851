using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrderFlow.Grains.Hosting;

namespace OrderFlow.Grains.Messaging;

/// <summary>What every subscriber grain needs from the silo, in one injectable bundle so a subscriber's constructor stays short.</summary>
public sealed class SubscriberServices(
    IOptions<OrderMessagingOptions> options,
    IOptions<TransientRetryOptions> transientRetry,
    DrillBoard drills,
    TimeProvider clock,
    ILoggerFactory loggerFactory,
    SubscriberMetrics metrics)
{
    public OrderMessagingOptions Options => options.Value;
    public TransientRetryOptions TransientRetry => transientRetry.Value;
    public DrillBoard Drills => drills;
    public TimeProvider Clock => clock;
    public ILoggerFactory LoggerFactory => loggerFactory;
    public SubscriberMetrics Metrics => metrics;

    private readonly ConcurrentDictionary<Type, ILogger> _loggers = new();

    /// <summary>The logger of a subscriber class, made once per class (an activation per order and subscriber asks for it).</summary>
    public ILogger LoggerFor(Type subscriberType) => _loggers.GetOrAdd(subscriberType, static (type, factory) => factory.CreateLogger(type), loggerFactory);
}
