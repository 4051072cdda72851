using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using OrderFlow.Contracts;
using OrderFlow.Grains.Ledgers;

namespace OrderFlow.Tests;

/// <summary>The reservation rules of one SKU or coupon, without a cluster: every call idempotent, figures never negative.</summary>
public sealed class ReservationRulesTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 27, 0, 0, 0, TimeSpan.Zero);

    private static ReservationHead Stock(long available) => new() { Exists = true, Available = available };

    [Fact]
    public void An_entry_holds_its_order_id_once_when_the_reservation_came_from_the_stored_record()
    {
        var serializer = new Microsoft.Extensions.DependencyInjection.ServiceCollection().AddSerializer()
            .BuildServiceProvider().GetRequiredService<Orleans.Serialization.Serializer>();
        // The stored reservation's id is another instance than the caller's (the record was read back); a change keeps it.
        var stored = new Reservation(new string("order-with-a-long-id-0001".AsSpan()), 0, 3, ReservationState.Reserved, Now);
        var head = Stock(10);
        head.Reserved = 3;
        var (_, next) = ReservationRules.Commit(head, stored, "order-with-a-long-id-0001", Now);
        var entry = ReservationRules.EntryOf("order-with-a-long-id-0001", next!);
        Assert.Same(entry.Key, entry.Reservation!.OrderId);
        var twice = serializer.SerializeToArray(new LedgerEntry { Key = "order-with-a-long-id-0001", Reservation = next });
        Assert.True(serializer.SerializeToArray(entry).Length <= twice.Length - "order-with-a-long-id-0001".Length);
        Assert.Equal("order-with-a-long-id-0001", ReservationRules.EntryOf("order-with-a-long-id-0001", new Reservation("other", 0, 1, ReservationState.Reserved, Now)).Key);
    }

    [Fact]
    public void A_reservation_takes_units_from_available_and_waits_for_its_order()
    {
        var head = Stock(5);
        var (result, next) = ReservationRules.Reserve(head, null, "o1", 0, 3, Now, 10);

        Assert.Equal((ReservationOutcome.Done, 2L), (result.Outcome, result.Left));
        Assert.Equal(new Reservation("o1", 0, 3, ReservationState.Reserved, Now), next);
        Assert.Equal((2L, 3L, 0L), (head.Available, head.Reserved, head.Committed));
        Assert.True(head.Pending.ContainsKey("o1"));
    }

    [Fact]
    public void Asking_for_more_than_is_available_changes_nothing()
    {
        var head = Stock(2);
        var (result, next) = ReservationRules.Reserve(head, null, "o1", 0, 3, Now, 10);

        Assert.Equal(ReservationOutcome.Insufficient, result.Outcome);
        Assert.Null(next);
        Assert.Equal((2L, 0L), (head.Available, head.Reserved));
        Assert.Empty(head.Pending);
    }

    [Fact]
    public void A_key_without_a_record_refuses_as_unknown()
    {
        var head = new ReservationHead();
        Assert.Equal(ReservationOutcome.Unknown, ReservationRules.Reserve(head, null, "o1", 0, 1, Now, 10).Result.Outcome);
        Assert.Equal(0, head.Available);
    }

    [Fact]
    public void The_same_reservation_again_is_a_repeat()
    {
        var head = Stock(5);
        var (_, first) = ReservationRules.Reserve(head, null, "o1", 0, 3, Now, 10);
        var (again, next) = ReservationRules.Reserve(head, first, "o1", 0, 3, Now, 10);

        Assert.Equal(ReservationOutcome.AlreadyDone, again.Outcome);
        Assert.Null(next);
        Assert.Equal((2L, 3L), (head.Available, head.Reserved));
    }

    [Fact]
    public void A_new_try_of_the_same_placement_replaces_the_earlier_quantity()
    {
        var head = Stock(5);
        var (_, first) = ReservationRules.Reserve(head, null, "o1", 0, 3, Now, 10);
        var (result, next) = ReservationRules.Reserve(head, first, "o1", 0, 5, Now, 10);

        Assert.Equal(ReservationOutcome.Done, result.Outcome);
        Assert.Equal(5, next!.Quantity);
        Assert.Equal((0L, 5L), (head.Available, head.Reserved));
    }

    [Fact]
    public void A_fenced_epoch_cannot_reserve_again_but_a_later_one_can()
    {
        var head = Stock(5);
        var (_, reserved) = ReservationRules.Reserve(head, null, "o1", 0, 2, Now, 10);
        var (_, released) = ReservationRules.Settle(head, reserved, "o1", 0, keep: false, Now);

        Assert.Equal(ReservationState.Released, released!.State);
        Assert.Equal((5L, 0L), (head.Available, head.Reserved));
        Assert.Equal(ReservationOutcome.Fenced, ReservationRules.Reserve(head, released, "o1", 0, 2, Now, 10).Result.Outcome);
        var (later, next) = ReservationRules.Reserve(head, released, "o1", 1, 2, Now, 10);
        Assert.Equal((ReservationOutcome.Done, 1L), (later.Outcome, next!.Epoch));
        Assert.Equal((3L, 2L), (head.Available, head.Reserved));
    }

    [Fact]
    public void A_later_epoch_replaces_a_reservation_whose_release_has_not_arrived()
    {
        var head = Stock(3);
        var (_, old) = ReservationRules.Reserve(head, null, "o1", 0, 3, Now, 10);
        var (result, next) = ReservationRules.Reserve(head, old, "o1", 1, 3, Now, 10);

        Assert.Equal(ReservationOutcome.Done, result.Outcome);
        Assert.Equal((0L, 3L), (head.Available, head.Reserved));
        // The late release of epoch 0 finds epoch 1 there and gives nothing back.
        Assert.Equal(ReservationOutcome.AlreadyDone, ReservationRules.Settle(head, next, "o1", 0, keep: false, Now).Result.Outcome);
        Assert.Equal((0L, 3L), (head.Available, head.Reserved));
    }

    [Fact]
    public void Payment_commits_once_and_cancellation_restores_once()
    {
        var head = Stock(4);
        var (_, reserved) = ReservationRules.Reserve(head, null, "o1", 0, 4, Now, 10);
        var (committed, sold) = ReservationRules.Commit(head, reserved, "o1", Now);
        Assert.Equal(ReservationOutcome.Done, committed.Outcome);
        Assert.Equal((0L, 0L, 4L), (head.Available, head.Reserved, head.Committed));
        Assert.Empty(head.Pending);
        Assert.Equal(ReservationOutcome.AlreadyDone, ReservationRules.Commit(head, sold, "o1", Now).Result.Outcome);

        var (restored, back) = ReservationRules.Release(head, sold, "o1", Now);
        Assert.Equal((ReservationOutcome.Done, ReservationState.Restored), (restored.Outcome, back!.State));
        Assert.Equal((4L, 0L, 0L), (head.Available, head.Reserved, head.Committed));
        Assert.Equal(ReservationOutcome.AlreadyDone, ReservationRules.Release(head, back, "o1", Now).Result.Outcome);
        Assert.Equal((4L, 0L, 0L), (head.Available, head.Reserved, head.Committed));
        // The payment handled again after the restore (a subscriber replaying the order's log): it was done, nothing moves.
        Assert.Equal(ReservationOutcome.AlreadyDone, ReservationRules.Commit(head, back, "o1", Now).Result.Outcome);
        Assert.Equal((4L, 0L, 0L), (head.Available, head.Reserved, head.Committed));
    }

    [Fact]
    public void Cancellation_before_payment_releases_and_nothing_more()
    {
        var head = Stock(4);
        var (_, reserved) = ReservationRules.Reserve(head, null, "o1", 0, 1, Now, 10);
        var (_, released) = ReservationRules.Release(head, reserved, "o1", Now);

        Assert.Equal(ReservationState.Released, released!.State);
        Assert.Equal((4L, 0L), (head.Available, head.Reserved));
        Assert.Equal(ReservationOutcome.Conflict, ReservationRules.Commit(head, released, "o1", Now).Result.Outcome);
        Assert.Equal(ReservationOutcome.AlreadyDone, ReservationRules.Release(head, null, "never-placed", Now).Result.Outcome);
    }

    [Fact]
    public void A_confirmed_or_kept_reservation_leaves_the_pending_list_and_keeps_its_units()
    {
        var head = Stock(4);
        var (_, a) = ReservationRules.Reserve(head, null, "a", 0, 1, Now, 10);
        ReservationRules.Reserve(head, null, "b", 0, 1, Now, 10);

        Assert.True(ReservationRules.Confirm(head, "a", 0));
        Assert.False(ReservationRules.Confirm(head, "a", 0));
        Assert.False(ReservationRules.Confirm(head, "b", 7));
        Assert.Equal(ReservationOutcome.AlreadyDone, ReservationRules.Settle(head, a, "b", 0, keep: true, Now).Result.Outcome);
        Assert.Empty(head.Pending);
        Assert.Equal((2L, 2L), (head.Available, head.Reserved));
    }

    [Fact]
    public void Too_many_unconfirmed_reservations_refuse_retriably()
    {
        var head = Stock(10);
        ReservationRules.Reserve(head, null, "a", 0, 1, Now, maxPending: 2);
        ReservationRules.Reserve(head, null, "b", 0, 1, Now, maxPending: 2);

        Assert.Equal(ReservationOutcome.Busy, ReservationRules.Reserve(head, null, "c", 0, 1, Now, maxPending: 2).Result.Outcome);
        Assert.Equal((8L, 2L), (head.Available, head.Reserved));
    }
}
