using OrderFlow.Contracts;

namespace OrderFlow.Grains.Subscribers;

// Each subscriber type has its own interface: the grain type of each is distinct, and these give callers
// (and Orleans' type map) one interface per implementation. Use IOrderSubscriberGrain for the shared surface.
[Alias("subscribers.ICouponSubscriberGrain")] public interface ICouponSubscriberGrain : IOrderSubscriberGrain;
[Alias("subscribers.IPointsSubscriberGrain")] public interface IPointsSubscriberGrain : IOrderSubscriberGrain;
[Alias("subscribers.ISmsSubscriberGrain")] public interface ISmsSubscriberGrain : IOrderSubscriberGrain;
[Alias("subscribers.IActivityGmvSubscriberGrain")] public interface IActivityGmvSubscriberGrain : IOrderSubscriberGrain;
[Alias("subscribers.IInventorySubscriberGrain")] public interface IInventorySubscriberGrain : IOrderSubscriberGrain;
[Alias("subscribers.IOrderSyncSubscriberGrain")] public interface IOrderSyncSubscriberGrain : IOrderSubscriberGrain;
