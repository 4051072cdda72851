using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Data.Tables;
using Azure.Storage.Queues;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Orleans.Serialization;
using Orleans.Serialization.Serializers;
using Orleans.Serialization.Session;
using OrderFlow.Contracts;
using OrderFlow.Grains.Backfill;
using OrderFlow.Grains.Benchmarks;
using OrderFlow.Grains.FlashSales;
using OrderFlow.Grains.Messaging;
using OrderFlow.Grains.Ledgers;
using OrderFlow.Grains.Orders;
using OrderFlow.Grains.Security;
using Orleans.Configuration;
using Orleans.Storage;
using Orleans.Streams;

namespace OrderFlow.Grains.Hosting;

public static class OrderMessagingSiloBuilderExtensions
{
    /// <summary>
    /// Adds the order messaging pipeline's services and options (sections <c>OrderMessaging</c>,
    /// <c>OrderMessaging:TransientRetry</c>, <c>OrderRelay</c>, <c>OrderCatalog</c>, <c>Orders</c>, <c>Reservations</c>, <c>Backfill</c>,
    /// <c>Drills</c> and
    /// <c>Benchmarks</c>).
    /// Storage and stream providers come from a profile, e.g. <see cref="UseEmbeddedOrderStorage"/>.
    /// </summary>
    public static ISiloBuilder AddOrderMessaging(this ISiloBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<OrderMessagingOptions>()
            .BindConfiguration(OrderMessagingOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddOptions<TransientRetryOptions>()
            .BindConfiguration(TransientRetryOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddOptions<DrillOptions>()
            .BindConfiguration(DrillOptions.SectionName)
            .Validate(drills => drills.Values.All(d => d.FailureRate is >= 0 and <= 1 && d.ExtraDelayMs is >= 0 and <= 600_000),
                "Drills: FailureRate must be between 0 and 1 and ExtraDelayMs between 0 and 600000")
            .ValidateOnStart();
        services.AddOptions<OrderRelayOptions>()
            .BindConfiguration(OrderRelayOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, StartupWake>();
        services.AddOptions<OrderCatalogOptions>()
            .BindConfiguration(OrderCatalogOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddOptions<ReservationOptions>()
            .BindConfiguration(ReservationOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddOptions<BackfillOptions>()
            .BindConfiguration(BackfillOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddOptions<FlashSaleOptions>()
            .BindConfiguration(FlashSaleOptions.SectionName)
            .ValidateDataAnnotations()
            .Validate<IOptions<ReminderOptions>>((sales, reminders) => sales.WakePeriod >= reminders.Value.MinimumReminderPeriod,
                "FlashSales:WakePeriod is the drainer's reminder period: it must be at least Orleans' ReminderOptions.MinimumReminderPeriod")
            .ValidateOnStart();
        services.AddOptions<OrderTimeoutOptions>()
            .BindConfiguration(OrderTimeoutOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        // Orleans' own reminder options, settable like ours: RefreshReminderListPeriod also bounds how long removed
        // reminders stay in the silo's memory (README, Configuration).
        services.AddOptions<ReminderOptions>().BindConfiguration("Reminders");
        services.TryAddSingleton(TimeProvider.System);
        CachedGrainInterfaceTypes.AddTo(services);
        services.TryAddSingleton<IOrderEventPublisher, StreamOrderEventPublisher>();
        services.TryAddSingleton<DrillBoard>();
        services.TryAddSingleton<SubscriberMetrics>();
        services.TryAddSingleton<FlashSaleMetrics>();
        services.TryAddSingleton<SubscriberServices>();
        services.TryAddSingleton<SubscriberCatalog>();
        services.TryAddSingleton<RelayBatcher>();
        services.AddOptions<BenchmarkOptions>().BindConfiguration(BenchmarkOptions.SectionName);
        // The bench's grains exist only on a silo started for benchmarks: elsewhere they are not registered at all, so
        // no client can publish bench traffic on the production stream provider or read and change the silo's drills.
        services.AddOptions<GrainTypeOptions>().PostConfigure<IOptions<BenchmarkOptions>>((grainTypes, bench) =>
        {
            if (!bench.Value.Enabled)
            {
                grainTypes.Classes.RemoveWhere(type => type.Namespace == typeof(BenchControlGrain).Namespace);
            }
        });
        // Any incoming call filter puts every grain call of the silo through Orleans' filter path (an invoker object, an
        // async step and a continuation per call): 11 % of the bytes allocated and 11–13 % of the silo's CPU per delivery
        // on the brokers' workload (docs/BENCHMARKS.md). So each filter is there only where it is wanted.
        if (builder.Configuration.GetValue(ClientCallFilter.SettingKey, true))
        {
            builder.AddIncomingGrainCallFilter<ClientCallFilter>();
        }

        services.TryAddSingleton<BenchCallCounter>();
        if (builder.Configuration.GetValue<bool>($"{BenchmarkOptions.SectionName}:{nameof(BenchmarkOptions.Enabled)}")
            && builder.Configuration.GetValue($"{BenchmarkOptions.SectionName}:{nameof(BenchmarkOptions.CountGrainCalls)}", true))
        {
            // Only a bench silo counts its grain calls: elsewhere the counter is not in the call path.
            services.AddSingleton<IIncomingGrainCallFilter>(sp => sp.GetRequiredService<BenchCallCounter>());
        }

        services.TryAddSingleton<BenchDeliveryCounter>();
        services.TryAddSingleton<BenchSwitches>();
        services.TryAddSingleton<StorageOperationCounter>();
        // Ledger entries in the ledgers' grain storage, unless the profile brought its own store (Azure: one table).
        services.TryAddSingleton<ILedgerEntryStore, GrainStorageLedgerEntryStore>();
        return builder;
    }

    /// <summary>Configuration section of the order stream provider's own Orleans options (see <see cref="UseEmbeddedOrderStorage"/>).</summary>
    public const string StreamsSectionName = "OrderStreams";

    /// <summary>
    /// The embedded profile: in-memory grain storage, memory streams and in-memory reminders. Nothing to install,
    /// nothing survives the silo. Use the durable profile for anything that must outlive a process.
    /// <para>
    /// Tuned from the bench (docs/BENCHMARKS.md): grain state is stored with Orleans' binary serializer rather than
    /// the storage default (Newtonsoft JSON with type names, which dominated the silo's CPU profile), and the order
    /// stream resolves its subscribers from implicit subscriptions only, so a new order stream no longer activates a
    /// pub-sub rendezvous grain and writes its state. The stream provider's Orleans options can be set from the
    /// <c>OrderStreams</c> section: <c>PullingAgent</c> (<see cref="StreamPullingAgentOptions"/>),
    /// <c>CacheEviction</c> (<see cref="StreamCacheEvictionOptions"/>) and <c>Partitioning</c>
    /// (<see cref="HashRingStreamQueueMapperOptions"/>).
    /// </para>
    /// </summary>
    /// <param name="builder">The silo.</param>
    /// <param name="singleSilo">
    /// True for a cluster of this one silo (<c>./run.sh</c>, <c>./bench.sh</c>): grain state in this process's memory
    /// (<see cref="SiloLocalGrainStorage"/>, no grain call per read or write). False (the default, for several silos in
    /// one cluster such as a TestCluster): Orleans' memory storage, whose records live in storage grains any silo reaches.
    /// </param>
    public static ISiloBuilder UseEmbeddedOrderStorage(this ISiloBuilder builder, bool singleSilo = false)
    {
        if (singleSilo)
        {
            // One set of rows for every store: an order's records in the orders, ledgers and subscribers stores share a row.
            builder.Services.AddSingleton(services => new SiloLocalGrainStorage(
                services.GetRequiredService<Serializer>(), services.GetRequiredService<SerializerSessionPool>(),
                services.GetRequiredService<IActivatorProvider>()));
        }

        foreach (var store in StorageNames.All)
        {
            if (singleSilo)
            {
                builder.Services.AddKeyedSingleton<IGrainStorage>(store, (services, _) => services.GetRequiredService<SiloLocalGrainStorage>().ForStore(store));
                continue;
            }

            builder.AddMemoryGrainStorage(store);
            builder.Services.AddOptions<MemoryGrainStorageOptions>(store)
                .Configure<Serializer>((options, serializer) => options.GrainStorageSerializer ??= new OrleansGrainStorageSerializer(serializer));
        }

        builder.AddMemoryStreams(OrderStreams.ProviderName, streams =>
            {
                // Only implicit subscriptions exist for orders (and the bench namespace).
                streams.ConfigureStreamPubSub(StreamPubSubType.ImplicitOnly);
                streams.ConfigurePullingAgent(options => ConfigureOrderStreamAgent(options));
                streams.ConfigureCacheEviction(options => ConfigureOrderStreamCache(options));
                streams.Configure<HashRingStreamQueueMapperOptions>(options => options.BindConfiguration($"{StreamsSectionName}:Partitioning"));
                // Orleans' memory streams with caches that empty when the silo is idle and a block pool that shrinks.
                streams.ConfigureComponent<IQueueAdapterFactory>(OrderMemoryAdapterFactory.Create);
            })
            .UseInMemoryReminderService();
        builder.Services.AddOptions<OrderStreamBlockPoolOptions>()
            .BindConfiguration(OrderStreamBlockPoolOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.TryAddSingleton(services => new OrderStreamBlockPool(services.GetRequiredService<IOptions<OrderStreamBlockPoolOptions>>().Value));
        // Then the Reminders section, whichever of this and AddOrderMessaging comes first.
        builder.Services.AddOptions<ReminderOptions>()
            .Configure(o => o.RefreshReminderListPeriod = EmbeddedReminderRefreshPeriod)
            .BindConfiguration("Reminders");
        return builder;
    }

    /// <summary>
    /// How often the embedded silo re-reads its in-memory reminder table by default (Orleans: 5 minutes). A removed
    /// reminder (a reservation key's check-back, ~480 B) stays in the silo's memory until the next re-read; here a
    /// re-read is one call to the in-memory table, not a query of a storage table, so it can run every minute.
    /// </summary>
    public static readonly TimeSpan EmbeddedReminderRefreshPeriod = TimeSpan.FromMinutes(1);

    /// <summary>
    /// How long the in-memory order stream's cache keeps an event by default: at least this long after pulling it from its
    /// queue (Orleans: 5 minutes), and then until it is this much older than the newest event (Orleans: 30 minutes) or,
    /// unless it is the newest, has been cached this long (<see cref="AgeBoundPurge"/>). Orleans' rule alone never purges
    /// while the silo is idle, so it held the last half hour of traffic (~1 KB per order) for as long as the silo stayed
    /// quiet. The stream retries a delivery for <c>MaxEventDeliveryTime</c> (1 minute) with the
    /// event in hand, not from the cache; an event purged before its consumer's cursor reached it is skipped (the cursor
    /// goes on from the stream's earliest event still cached) like one the stream gave up on, and the outbox relay brings
    /// every subscriber to it.
    /// </summary>
    public static readonly TimeSpan OrderStreamCacheWindow = TimeSpan.FromMinutes(1);

    /// <summary>
    /// The in-memory order stream's cache: <see cref="OrderStreamCacheWindow"/>, and no per-stream record of purged
    /// events (Orleans keeps one per stream for 10 minutes, for a consumer that resumes from a token older than the cache;
    /// an older token is a cache miss, and the agent starts the consumer at the event that woke it), then the <c>OrderStreams:CacheEviction</c> section applies.
    /// </summary>
    private static OptionsBuilder<StreamCacheEvictionOptions> ConfigureOrderStreamCache(OptionsBuilder<StreamCacheEvictionOptions> options) =>
        options.Configure(o =>
            {
                o.DataMinTimeInCache = OrderStreamCacheWindow;
                o.DataMaxAgeInCache = OrderStreamCacheWindow;
                o.MetadataMinTimeInCache = null;
            })
            .BindConfiguration($"{StreamsSectionName}:CacheEviction");

    /// <summary>How long a stream agent keeps a quiet order stream's state (~600 B per order) by default.</summary>
    public static readonly TimeSpan OrderStreamInactivityPeriod = TimeSpan.FromMinutes(2);

    /// <summary>
    /// The order stream's pulling agent in either profile: a quiet stream's state is dropped after
    /// <see cref="OrderStreamInactivityPeriod"/> rather than Orleans' 30 minutes (a finished order's stream is quiet for
    /// good; its next event, if any, re-registers it), then the <c>OrderStreams:PullingAgent</c> section applies.
    /// </summary>
    private static OptionsBuilder<StreamPullingAgentOptions> ConfigureOrderStreamAgent(OptionsBuilder<StreamPullingAgentOptions> options) =>
        options.Configure(o => o.StreamInactivityPeriod = OrderStreamInactivityPeriod)
            .BindConfiguration($"{StreamsSectionName}:PullingAgent");

    /// <summary>
    /// The durable profile: grain state, the order stream, cluster membership and reminders all live in Azure Storage
    /// (Azurite locally), so several silos can share the work and any of them can die. Grain state goes to Azure
    /// Tables (one table per storage name), the order stream to Azure Queues, membership and reminders to Azure Tables.
    /// Rows are partitioned by <see cref="ClusterOptions.ServiceId"/> (state, reminders) and
    /// <see cref="ClusterOptions.ClusterId"/> (membership), and the queue names derive from the service id, so two
    /// services never share data. Throws <see cref="OptionsValidationException"/> when a setting is unusable.
    /// </summary>
    public static ISiloBuilder UseAzureOrderStorage(this ISiloBuilder builder, AzureOrderStorageOptions storage)
    {
        ArgumentNullException.ThrowIfNull(storage);
        var problems = storage.Problems();
        if (problems.Count > 0)
        {
            throw new OptionsValidationException(nameof(AzureOrderStorageOptions), typeof(AzureOrderStorageOptions), problems);
        }

        // Every request to storage passes one counting policy (per retry attempt): the OrderFlow.Storage meter, and the
        // bench's "storage operations per event". Registered here so the silo's services read the same instance.
        var counter = new StorageOperationCounter();
        builder.Services.AddSingleton(counter);
        var (tables, queues, cluster) = CreateStorageClients(storage, counter);

        foreach (var (name, table) in new[]
                 {
                     (StorageNames.Orders, "OrderFlowOrders"),
                     (StorageNames.Subscribers, "OrderFlowSubscribers"),
                     (StorageNames.Ledgers, "OrderFlowLedgers"),
                     (StorageNames.FlashSales, "OrderFlowFlashSales"),
                     (StorageNames.PubSub, "OrderFlowPubSub"),
                 })
        {
            builder.AddAzureTableGrainStorage(name, (OptionsBuilder<AzureTableStorageOptions> options) => options.Configure<IServiceProvider>((o, services) =>
            {
                o.TableServiceClient = tables;
                o.TableName = table;
                // The Orleans serializer, as on the wire: the state types are [GenerateSerializer] with [Id]s and
                // aliases, so a renamed property or type does not orphan stored state.
                o.GrainStorageSerializer = ActivatorUtilities.CreateInstance<OrleansGrainStorageSerializer>(services);
                // A cleared record is a deleted row, not an empty one left behind: the payment deadline shards delete
                // their emptied pages (the only clears in this store), one per 256 placements of a shard.
                o.DeleteStateOnClear = name == StorageNames.Orders;
            }));
        }

        // Ledger entries: one partition per ledger key, so a ledger's batch is one entity-group transaction.
        builder.Services.AddSingleton<ILedgerEntryStore>(services =>
            new AzureTableLedgerEntryStore(tables, services.GetRequiredService<IOptions<ClusterOptions>>().Value.ServiceId,
                services.GetRequiredService<Serializer>()));

        builder.UseAzureStorageClustering(options => options.TableServiceClient = cluster);
        builder.UseAzureTableReminderService(options => options.TableServiceClient = cluster);

        // Failure detection tuned so a silo that dies without a word is declared dead in seconds rather than the
        // default ~10 s to a minute: probe every second (1 s timeout), suspect after 2 missed probes, and re-read the
        // membership table every 2 s. Until then, calls to grains that lived there fail with retriable errors.
        builder.Configure<ClusterMembershipOptions>(o =>
        {
            o.ProbeTimeout = TimeSpan.FromSeconds(1);
            o.NumMissedProbesLimit = 2;
            o.TableRefreshTimeout = TimeSpan.FromSeconds(2);
            o.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(5);
        });

        builder.AddAzureQueueStreams(OrderStreams.ProviderName, (SiloAzureQueueStreamConfigurator stream) =>
        {
            stream.ConfigureAzureQueue(options => options.Configure<IOptions<ClusterOptions>>((o, cluster) =>
            {
                o.QueueServiceClient = queues;
                o.QueueNames = storage.QueueNamesFor(cluster.Value.ServiceId);
                o.MessageVisibilityTimeout = storage.QueueVisibilityTimeout;
            }));
            stream.ConfigureCacheSize(storage.QueueCacheSize);
            // The queues are polled at AzureQueues:QueuePollPeriod, whatever OrderStreams:PullingAgent says (its 20 ms in
            // appsettings.json is the in-memory queue's period: here it would be 50 requests a second per queue, idle).
            stream.ConfigurePullingAgent(options => ConfigureOrderStreamAgent(options)
                .Configure(o => o.GetQueueMsgsTimerPeriod = storage.QueuePollPeriod));
            // Every subscriber is an implicit subscription, so the stream never needs the pub-sub rendezvous grain:
            // that saves a storage write per new order stream.
            stream.ConfigureStreamPubSub(StreamPubSubType.ImplicitOnly);
        });
        return builder;
    }

    /// <summary>
    /// The durable profile's storage clients: one table client for grain state and ledger entries, one queue client for
    /// the order stream, and a table client of its own for membership and reminders. Each request's retries fail fast
    /// and pass <paramref name="counter"/>. The connections per endpoint are bounded
    /// (<see cref="AzureOrderStorageOptions.MaxConnectionsPerEndpoint"/>), in two pools: grain state and the queues share
    /// one, and membership and reminders have their own, so that a silo's liveness never waits behind its grain writes.
    /// </summary>
    public static AzureStorageClients CreateStorageClients(AzureOrderStorageOptions storage, StorageOperationCounter counter)
    {
        // The SDK's default retry (3 retries from 0.8 s, doubling) makes an unreachable service cost ~6 s per call.
        // A command waits for its state write and one publish attempt, so storage that is down must fail in about a
        // second: the order's write then fails fast with a clear error, and a failed publish leaves the event in the
        // outbox for the order's own retry timer. The network timeout stays generous: a busy emulator answers slowly.
        // (It includes the wait for a free connection when the pool is at its bound.)
        static void FailFast(RetryOptions retry)
        {
            retry.Mode = RetryMode.Exponential;
            retry.MaxRetries = 2;
            retry.Delay = TimeSpan.FromMilliseconds(100);
            retry.MaxDelay = TimeSpan.FromSeconds(1);
            retry.NetworkTimeout = TimeSpan.FromSeconds(20);
        }

        TableClientOptions TableOptions(HttpPipelineTransport transport)
        {
            var options = new TableClientOptions { Transport = transport };
            FailFast(options.Retry);
            options.AddPolicy(counter.PolicyFor("table"), HttpPipelinePosition.PerRetry);
            return options;
        }

        var shared = BoundedTransport(storage.MaxConnectionsPerEndpoint);
        var queueOptions = new QueueClientOptions { Transport = shared };
        FailFast(queueOptions.Retry);
        queueOptions.AddPolicy(counter.PolicyFor("queue"), HttpPipelinePosition.PerRetry);
        return new AzureStorageClients(
            new TableServiceClient(storage.ConnectionString, TableOptions(shared)),
            new QueueServiceClient(storage.ConnectionString, queueOptions),
            new TableServiceClient(storage.ConnectionString, TableOptions(BoundedTransport(storage.MaxConnectionsPerEndpoint))));
    }

    /// <summary>
    /// An HTTP transport like the Azure SDK's shared default (no redirects, no cookies, connections renewed every
    /// 5 minutes so that a storage endpoint's new address is seen, no client-wide timeout: the pipeline's per-try
    /// timeout applies), with at most <paramref name="maxConnectionsPerEndpoint"/> connections to each endpoint: a
    /// request beyond the bound waits for a free connection instead of opening a socket of its own.
    /// </summary>
    private static HttpClientTransport BoundedTransport(int maxConnectionsPerEndpoint) =>
        new(new HttpClient(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = maxConnectionsPerEndpoint,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            AllowAutoRedirect = false,
            UseCookies = false,
        }) { Timeout = Timeout.InfiniteTimeSpan });
}

/// <summary>The durable profile's storage clients (<see cref="OrderMessagingSiloBuilderExtensions.CreateStorageClients"/>).</summary>
/// <param name="Tables">Grain state and ledger entries.</param>
/// <param name="Queues">The order stream's queues (same connection pool as <paramref name="Tables"/>).</param>
/// <param name="Cluster">Membership and reminders, in a connection pool of their own.</param>
public sealed record AzureStorageClients(TableServiceClient Tables, QueueServiceClient Queues, TableServiceClient Cluster);
