using OrderFlow.Contracts;
using OrderFlow.Grains.Verification;

namespace OrderFlow.Tests;

/// <summary>The audit's reconciliation rules, without a cluster: one order as storage would hold it, and what differs.</summary>
public sealed class AuditRulesTests
{
    private const string Id = "o1";
    private const string User = "u1";
    private const string Sku = "s1";
    private const string CouponId = "c1";
    private const string Activity = "a1";
    private static readonly DateTimeOffset At = DateTimeOffset.UnixEpoch;
    private static readonly IReadOnlyList<OrderLine> Lines = [new(Sku, 2, 10.5m), new("s2", 1, 4m), new(Sku, 1, 10.5m)];
    private const decimal Total = 35.5m;

    private static readonly string[] Names = ["activity-gmv", "coupon", "inventory", "order-sync", "points", "sms"];

    private static OrderPlaced Placed() => new(Guid.NewGuid(), Id, 1, At, User, Lines, Total, CouponId, Activity);
    private static OrderPaid Paid(long seq = 2) => new(Guid.NewGuid(), Id, seq, At, User, "pay-1", Total, Lines, CouponId, Activity);
    private static OrderShipped Shipped() => new(Guid.NewGuid(), Id, 3, At, User);
    private static OrderReceived Received() => new(Guid.NewGuid(), Id, 4, At, User);
    private static OrderCancelled Cancelled(long seq, bool wasPaid) => new(Guid.NewGuid(), Id, seq, At, User, wasPaid, wasPaid ? Total : 0, Lines, CouponId, Activity, "test");

    private static StoredOrderDetail Detail(OrderStatus status, params OrderEvent[] events) =>
        new(Id, true, status, User, Lines, Total, events.Any(e => e is OrderPaid) ? Total : 0, "pay-1", CouponId, Activity, 0, events.Length, events);

    private static StoredSubscriber Inbox(string name, long applied, bool finished, bool parked = false, long[]? held = null) =>
        new(name, true, applied, held ?? [], parked, finished, [], 0, 0, 0, 0, 0);

    /// <summary>Every inbox caught up: finished when the order is final, applied to its last event otherwise.</summary>
    private static StoredOrder Progress(StoredOrderDetail d, Func<StoredSubscriber, StoredSubscriber>? change = null) =>
        new(Id, d.Status, d.LastSequence, d.LastSequence, Names
            .Select(n => Inbox(n, d.LastSequence, d.Status.IsFinal()))
            .Select(s => change?.Invoke(s) ?? s).ToArray());

    /// <summary>The entries a caught-up order has: the reservations in the state its log ends in, and the processed keys.</summary>
    private static List<StoredEntry> Entries(StoredOrderDetail d)
    {
        var paid = d.Events.OfType<OrderPaid>().Any();
        var cancelled = d.Events.OfType<OrderCancelled>().FirstOrDefault();
        var state = cancelled is not null ? (cancelled.WasPaid ? ReservationState.Restored : ReservationState.Released)
            : paid ? ReservationState.Committed : ReservationState.Reserved;
        var list = new List<StoredEntry>
        {
            Reservation(LedgerKind.Stock, Sku, 3, state),
            Reservation(LedgerKind.Stock, "s2", 1, state),
            Reservation(LedgerKind.Coupon, CouponId, 1, state),
        };
        if (paid)
        {
            list.Add(Balance(LedgerKind.Points, User, $"{Id}:award", 35m));
            list.Add(Balance(LedgerKind.Gmv, Activity, $"{Id}:paid", Total));
        }

        if (cancelled is { WasPaid: true })
        {
            list.Add(Balance(LedgerKind.Points, User, $"{Id}:revoke", -35m));
            list.Add(Balance(LedgerKind.Gmv, Activity, $"{Id}:refund", -Total));
        }

        return list;
    }

    private static StoredEntry Reservation(LedgerKind kind, string key, long quantity, ReservationState state, long epoch = 0) =>
        new(kind, key, Id, true, 0, new Reservation(Id, epoch, quantity, state, At));

    private static StoredEntry Balance(LedgerKind kind, string key, string entryKey, decimal amount) => new(kind, key, entryKey, true, amount, null);

    private static ReplicaRow Row(StoredOrderDetail d) =>
        new(d.Status != OrderStatus.Cancelled, d.Status, Total, d.LastSequence, 0, (int)d.LastSequence);

    private static List<StoredEntry> Replace(List<StoredEntry> entries, Func<StoredEntry, bool> which, StoredEntry? with)
    {
        var i = entries.FindIndex(e => which(e));
        Assert.True(i >= 0);
        if (with is null)
        {
            entries.RemoveAt(i);
        }
        else
        {
            entries[i] = with;
        }

        return entries;
    }

    public static TheoryData<string> CaughtUpOrders => ["received", "paid-cancelled", "unpaid-cancelled", "placed", "paid"];

    private static StoredOrderDetail Order(string kind) => kind switch
    {
        "received" => Detail(OrderStatus.Received, Placed(), Paid(), Shipped(), Received()),
        "paid-cancelled" => Detail(OrderStatus.Cancelled, Placed(), Paid(), Cancelled(3, true)),
        "unpaid-cancelled" => Detail(OrderStatus.Cancelled, Placed(), Cancelled(2, false)),
        "placed" => Detail(OrderStatus.Placed, Placed()),
        "paid" => Detail(OrderStatus.Paid, Placed(), Paid()),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    [Theory, MemberData(nameof(CaughtUpOrders))]
    public void A_caught_up_order_has_no_discrepancy_and_nothing_in_flight(string kind)
    {
        var d = Order(kind);
        var audit = AuditRules.Check(d, Progress(d), Entries(d), Row(d));
        Assert.True(audit.Checked);
        Assert.Empty(audit.Discrepancies);
        Assert.Empty(audit.Notes);
    }

    [Fact]
    public void The_entries_to_read_cover_every_effect_of_the_order()
    {
        var refs = AuditRules.EntriesOf(Order("received"));
        Assert.Equal(
            new[] { $"Stock {Sku} {Id}", $"Stock s2 {Id}", $"Coupon {CouponId} {Id}", $"Points {User} {Id}:award", $"Points {User} {Id}:revoke", $"Gmv {Activity} {Id}:paid", $"Gmv {Activity} {Id}:refund" },
            refs.Select(r => $"{r.Kind} {r.LedgerKey} {r.EntryKey}"));
    }

    [Fact]
    public void A_wrong_points_amount_is_a_discrepancy_of_that_order_and_area()
    {
        var d = Order("received");
        var entries = Replace(Entries(d), e => e.EntryKey == $"{Id}:award", Balance(LedgerKind.Points, User, $"{Id}:award", 36m));
        var finding = Assert.Single(AuditRules.Check(d, Progress(d), entries, Row(d)).Discrepancies);
        Assert.Equal((Id, "points"), (finding.OrderId, finding.Area));
        Assert.Contains("36", finding.Detail);
    }

    [Fact]
    public void A_missing_effect_whose_event_is_stored_as_applied_is_a_discrepancy()
    {
        var d = Order("paid-cancelled");
        var entries = Replace(Entries(d), e => e.EntryKey == $"{Id}:refund", null);
        var finding = Assert.Single(AuditRules.Check(d, Progress(d), entries, Row(d)).Discrepancies);
        Assert.Equal("gmv", finding.Area);
    }

    [Fact]
    public void An_effect_of_an_event_the_order_never_had_is_a_discrepancy()
    {
        var d = Order("placed");
        var entries = Entries(d);
        entries.Add(Balance(LedgerKind.Points, User, $"{Id}:award", 35m));
        Assert.Equal("points", Assert.Single(AuditRules.Check(d, Progress(d), entries, Row(d)).Discrepancies).Area);
    }

    [Fact]
    public void A_reservation_behind_what_its_subscriber_applied_is_a_discrepancy()
    {
        var d = Order("received");
        var entries = Replace(Entries(d), e => e.Kind == LedgerKind.Stock && e.LedgerKey == Sku, Reservation(LedgerKind.Stock, Sku, 3, ReservationState.Reserved));
        var finding = Assert.Single(AuditRules.Check(d, Progress(d), entries, Row(d)).Discrepancies);
        Assert.Equal(("stock", true), (finding.Area, finding.Detail.Contains("expected Committed")));
    }

    [Fact]
    public void A_reservation_of_the_wrong_quantity_or_epoch_is_a_discrepancy()
    {
        var d = Order("placed");
        var entries = Replace(Entries(d), e => e.Kind == LedgerKind.Coupon, Reservation(LedgerKind.Coupon, CouponId, 1, ReservationState.Reserved, epoch: 1));
        entries = Replace(entries, e => e.LedgerKey == "s2", Reservation(LedgerKind.Stock, "s2", 2, ReservationState.Reserved));
        var found = AuditRules.Check(d, Progress(d), entries, Row(d)).Discrepancies;
        Assert.Equal(["coupon", "stock"], found.Select(f => f.Area).Order());
        var missing = AuditRules.Check(d, Progress(d), Replace(Entries(d), e => e.LedgerKey == "s2", null), Row(d)).Discrepancies;
        Assert.Equal(("stock", true), (Assert.Single(missing).Area, missing[0].Detail.StartsWith("s2: no reservation", StringComparison.Ordinal)));
    }

    [Fact]
    public void An_effect_whose_subscriber_has_not_stored_the_event_yet_is_in_flight_either_side_of_it()
    {
        var d = Order("paid");
        // inventory and points stored only the placement: the paid event is in flight for them.
        var progress = Progress(d, s => s.Subscriber is "inventory" or "points" ? s with { AppliedSequence = 1 } : s);
        var before = Replace(Entries(d), e => e.EntryKey == $"{Id}:award", null);
        before = Replace(before, e => e.LedgerKey == Sku, Reservation(LedgerKind.Stock, Sku, 3, ReservationState.Reserved));
        var audit = AuditRules.Check(d, progress, before, Row(d));
        Assert.Empty(audit.Discrepancies);
        // s1 still reserved and the award not applied: in flight. s2 already committed (the handler ran for it) is where
        // the paid order puts it: caught up, its inbox's progress written lazily (keyed effects), no note.
        Assert.Equal(2, audit.Notes.Count(n => n.Area == "in-flight"));
        Assert.DoesNotContain(audit.Notes, n => n.Detail.Contains("stock s2", StringComparison.Ordinal));

        // Every handler ran, no inbox stored it: the effects are all where the order's log puts them, nothing in flight.
        audit = AuditRules.Check(d, progress, Entries(d), Row(d));
        Assert.Empty(audit.Discrepancies);
        Assert.DoesNotContain(audit.Notes, n => n.Area == "in-flight");
    }

    [Fact]
    public void A_parked_subscriber_is_a_discrepancy_but_a_parked_sms_is_information()
    {
        var d = Order("paid");
        var progress = Progress(d, s => s.Subscriber is "coupon" or "sms" ? s with { AppliedSequence = 1, Parked = true, HeldSequences = [2] } : s);
        var entries = Replace(Entries(d), e => e.Kind == LedgerKind.Coupon, Reservation(LedgerKind.Coupon, CouponId, 1, ReservationState.Reserved));
        var audit = AuditRules.Check(d, progress, entries, Row(d));
        var finding = Assert.Single(audit.Discrepancies);
        Assert.Equal(("progress", true), (finding.Area, finding.Detail.StartsWith("coupon: parked", StringComparison.Ordinal)));
        Assert.Contains(audit.Notes, n => n.Area == "sms" && n.Detail.Contains("parked"));
    }

    [Fact]
    public void A_final_order_whose_inbox_is_behind_is_a_discrepancy()
    {
        var d = Order("received");
        var progress = Progress(d, s => s.Subscriber == "order-sync" ? s with { Finished = false, AppliedSequence = 3 } : s);
        var row = Row(d) with { Status = OrderStatus.Shipped, Version = 3 };
        var audit = AuditRules.Check(d, progress, Entries(d), row);
        var finding = Assert.Single(audit.Discrepancies);
        Assert.Equal(("progress", true), (finding.Area, finding.Detail.StartsWith("order-sync: behind", StringComparison.Ordinal)));
        Assert.Contains(audit.Notes, n => n.Area == "in-flight" && n.Detail.StartsWith("replica", StringComparison.Ordinal));
    }

    [Fact]
    public void A_replica_row_that_does_not_match_the_order_is_a_discrepancy()
    {
        var d = Order("paid-cancelled");
        var finding = Assert.Single(AuditRules.Check(d, Progress(d), Entries(d), Row(d) with { Exists = true, Version = 2 }).Discrepancies);
        Assert.Equal("replica", finding.Area);
        Assert.Contains("version 2, expected 3", finding.Detail);
        Assert.Equal("replica", Assert.Single(AuditRules.Check(d, Progress(d), Entries(d), null).Discrepancies).Area);
        Assert.Equal("replica", Assert.Single(AuditRules.Check(d, Progress(d), Entries(d), Row(d) with { Violations = 1 }).Discrepancies).Area);
    }

    [Fact]
    public void An_order_that_was_never_placed_is_not_checked()
    {
        var fenced = new StoredOrderDetail(Id, true, OrderStatus.None, null, [], 0, 0, null, null, null, 2, 0, []);
        Assert.Empty(AuditRules.EntriesOf(fenced));
        var audit = AuditRules.Check(fenced, new StoredOrder(Id, OrderStatus.None, 0, 0, []), [], null);
        Assert.False(audit.Checked);
        Assert.Empty(audit.Discrepancies);
        Assert.Contains("fenced", Assert.Single(audit.Notes).Detail);
    }

    [Fact]
    public void Key_sums_count_what_the_orders_should_hold_by_their_log()
    {
        var sums = AuditRules.Total(new[] { "received", "paid-cancelled", "unpaid-cancelled", "placed", "paid" }
            .Select(Order).SelectMany(d => AuditRules.Check(d, Progress(d), Entries(d), Row(d)).Sums));
        Assert.Equal(
            ["coupon c1 reserved=1 committed=2", "stock s1 reserved=3 committed=6", "stock s2 reserved=1 committed=2"],
            sums.Select(AuditRules.SumNote).Select(n => n.Detail));
        Assert.All(sums.Select(AuditRules.SumNote), n => Assert.Equal(("", "sum"), (n.OrderId, n.Area)));
    }
}
