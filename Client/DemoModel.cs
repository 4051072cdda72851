using OrderFlow.Contracts;

namespace OrderFlow.Client;

/// <summary>What the demo does with one order, and therefore which effects it expects downstream.</summary>
public sealed record OrderPlan(
    string OrderId, string UserId, IReadOnlyList<OrderLine> Items, string? CouponId, string? ActivityId,
    OrderPlan.Fate Ending, bool RepeatPayment)
{
    public enum Fate
    {
        Received,
        CancelledBeforePayment,
        CancelledAfterPayment,
    }

    public decimal Total => Items.Sum(line => line.Quantity * line.UnitPrice);

    /// <summary>Paid and not cancelled: the payment's effects must stay in every ledger.</summary>
    public bool KeepsPayment => Ending == Fate.Received;

    public int CommandCount => Ending switch
    {
        Fate.CancelledBeforePayment => 2,
        Fate.CancelledAfterPayment => 3,
        _ => 4,
    } + (RepeatPayment && Ending != Fate.CancelledBeforePayment ? 1 : 0);

    public static OrderPlan Create(string runId, int i)
    {
        var items = Enumerable.Range(0, 1 + i % 3)
            .Select(k => new OrderLine($"{runId}-sku{(i * 7 + k) % 20}", 1 + (i + k) % 3, 10m + (i * 13 + k * 7) % 9000 / 100m))
            .ToArray();
        var fate = (i % 10) switch
        {
            3 => Fate.CancelledBeforePayment,
            7 => Fate.CancelledAfterPayment,
            _ => Fate.Received,
        };
        return new OrderPlan($"{runId}-o{i}", $"{runId}-u{i % 100}", items,
            i % 2 == 0 ? $"{runId}-c{i}" : null, i % 3 != 2 ? $"{runId}-a{i % 4}" : null, fate, i % 20 == 5);
    }

    /// <summary>The commands, in order. A repeated payment reuses its command id and must change nothing.</summary>
    public IEnumerable<Func<Task<CommandResult>>> Steps(IOrderGrain order)
    {
        yield return () => order.PlaceAsync(new PlaceOrder($"{OrderId}-place", UserId, Items, CouponId, ActivityId));
        if (Ending == Fate.CancelledBeforePayment)
        {
            yield return () => order.CancelAsync(new CancelOrder($"{OrderId}-cancel", "changed my mind"));
            yield break;
        }

        var pay = new PayOrder($"{OrderId}-pay", $"pay-{OrderId}", Total);
        yield return () => order.PayAsync(pay);
        if (RepeatPayment)
        {
            yield return () => order.PayAsync(pay);
        }

        if (Ending == Fate.CancelledAfterPayment)
        {
            yield return () => order.CancelAsync(new CancelOrder($"{OrderId}-cancel", "refund requested"));
            yield break;
        }

        yield return () => order.ShipAsync(new ShipOrder($"{OrderId}-ship"));
        yield return () => order.ConfirmReceiptAsync(new ConfirmReceipt($"{OrderId}-receive"));
    }
}

/// <summary>Totals over every (order, subscriber) pair.</summary>
public sealed record Tally(long Events, long Applied, long Duplicates, long Retried, long Parked, long GapRepairs, long Pending, long Lost)
{
    public static Tally From(IReadOnlyList<OrderReport> reports)
    {
        long events = 0, applied = 0, duplicates = 0, retried = 0, parked = 0, repairs = 0, pending = 0, lost = 0;
        foreach (var report in reports)
        {
            var last = report.Order.LastSequence;
            events += last;
            foreach (var s in report.Subscribers)
            {
                applied += s.AppliedSequence - s.SkippedSequences.Count;
                duplicates += s.DuplicatesIgnored;
                retried += s.FailedAttempts;
                parked += s.Parked ? 1 : 0;
                repairs += s.GapRepairs;
                var held = s.BufferedSequences.Count(seq => seq <= last);
                pending += held;
                // Neither applied nor held in the durable inbox: the subscriber never got it.
                lost += Math.Max(0, last - s.AppliedSequence - held);
            }
        }

        return new Tally(events, applied, duplicates, retried, parked, repairs, pending, lost);
    }
}

/// <summary>Compares every effect ledger and replica row with what the client was told.</summary>
public static class LedgerCheck
{
    public static async Task<(long OutOfOrder, int Mismatches)> RunAsync(
        IClusterClient client, IReadOnlyList<OrderPlan> plans, IReadOnlyList<OrderReport> reports, TextWriter output)
    {
        var mismatches = 0;
        void Mismatch(string what)
        {
            mismatches++;
            if (mismatches <= 10)
            {
                output.WriteLine($"  MISMATCH {what}");
            }
        }

        // Replicas: the order-sync row must end where the order ended, with no change applied out of order.
        long outOfOrder = 0;
        var byId = reports.ToDictionary(r => r.Order.OrderId, StringComparer.Ordinal);
        foreach (var batch in plans.Chunk(200))
        {
            var rows = await Task.WhenAll(batch.Select(p => client.GetGrain<IOrderReplicaGrain>(p.OrderId).GetAsync()));
            foreach (var (plan, row) in batch.Zip(rows))
            {
                outOfOrder += row.Violations;
                var order = byId[plan.OrderId].Order;
                if (row.Version != order.LastSequence || row.Status != order.Status || row.Exists == (order.Status == OrderStatus.Cancelled))
                {
                    Mismatch($"replica of {plan.OrderId}: version {row.Version} status {row.Status} exists {row.Exists}, order at {order.LastSequence} {order.Status}");
                }
            }
        }

        var kept = plans.Where(p => p.KeepsPayment).ToArray();
        await Compare("points", plans.Select(p => p.UserId),
            kept.GroupBy(p => p.UserId).ToDictionary(g => g.Key, g => g.Sum(p => decimal.Floor(p.Total))),
            id => client.GetGrain<IPointsAccountGrain>(id), Mismatch);
        await Compare("gmv", plans.Where(p => p.ActivityId is not null).Select(p => p.ActivityId!),
            kept.Where(p => p.ActivityId is not null).GroupBy(p => p.ActivityId!).ToDictionary(g => g.Key, g => g.Sum(p => p.Total)),
            id => client.GetGrain<IActivityGmvGrain>(id), Mismatch);
        await Compare("coupon", plans.Where(p => p.CouponId is not null).Select(p => p.CouponId!),
            kept.Where(p => p.CouponId is not null).ToDictionary(p => p.CouponId!, _ => 1m),
            id => client.GetGrain<ICouponGrain>(id), Mismatch);
        await Compare("stock", plans.SelectMany(p => p.Items).Select(line => line.Sku),
            kept.SelectMany(p => p.Items).GroupBy(line => line.Sku).ToDictionary(g => g.Key, g => -(decimal)g.Sum(line => line.Quantity)),
            id => client.GetGrain<IStockGrain>(id), Mismatch);
        return (outOfOrder, mismatches);
    }

    private static async Task Compare(string what, IEnumerable<string> keys, IReadOnlyDictionary<string, decimal> expected,
        Func<string, ILedgerGrain> grain, Action<string> mismatch)
    {
        foreach (var batch in keys.Distinct(StringComparer.Ordinal).Chunk(200))
        {
            var snapshots = await Task.WhenAll(batch.Select(key => grain(key).GetAsync()));
            foreach (var (key, snapshot) in batch.Zip(snapshots))
            {
                var want = expected.GetValueOrDefault(key);
                if (snapshot.Balance != want)
                {
                    mismatch($"{what} {key}: balance {snapshot.Balance}, expected {want}");
                }
            }
        }
    }
}
