using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Runtime.Serialization;
using Azure;
using Azure.Core;
using Microsoft.Extensions.DependencyInjection;
using OrderFlow.Grains.Hosting;
using OrderFlow.Grains.Messaging;
using Orleans.Runtime.Messaging;
using Orleans.Serialization;
using Orleans.Storage;

namespace OrderFlow.Tests;

/// <summary>Which handler failures are transient infrastructure failures: the rule on its own, no cluster.</summary>
public sealed class FailureClassifierTests
{
    private static readonly GrainId Ledger = GrainId.Create("ledger-points", "user-1");

    /// <summary>What Orleans' StateStorageBridge throws when a provider's write fails with anything but an OrleansException.</summary>
    private static OrleansException FromStorageBridge(Exception providerError) =>
        new($"Error from storage provider FaultInjectingGrainStorage.points during WriteStateAsync for grain {Ledger}{Environment.NewLine} {providerError}", providerError);

    [Fact]
    public void An_injected_storage_fault_wrapped_by_the_storage_bridge_is_transient_and_described_by_its_chain()
    {
        var fault = new StorageFaultException(StorageNames.Ledgers, Ledger, StorageOperations.Write, StorageFaultMode.BeforeCall);

        var failure = FailureClassifier.Classify(FromStorageBridge(fault));

        Assert.Equal(FailureKind.Transient, failure.Kind);
        Assert.Same(fault, failure.Cause);
        Assert.Equal($"OrleansException > StorageFaultException: {fault.Message}", failure.Description);
    }

    [Theory]
    [InlineData(0, true)]
    [InlineData(408, true)]
    [InlineData(429, true)]
    [InlineData(500, true)]
    [InlineData(503, true)]
    [InlineData(504, true)]
    [InlineData(400, false)]
    [InlineData(403, false)]
    [InlineData(404, false)]
    [InlineData(409, false)]
    [InlineData(413, false)]
    public void A_table_service_error_is_transient_for_timeouts_throttling_server_errors_and_no_response(int status, bool transient)
    {
        var error = FromStorageBridge(new RequestFailedException(new StatusResponse(status)));

        Assert.Equal(transient ? FailureKind.Transient : FailureKind.Handler, FailureClassifier.Classify(error).Kind);
    }

    [Fact]
    public void A_table_service_error_that_crossed_a_silo_lost_its_status_property_and_is_classified_by_its_message()
    {
        var serializer = new ServiceCollection().AddSerializer(b => b.AddAssembly(typeof(StorageFaultException).Assembly))
            .BuildServiceProvider().GetRequiredService<Serializer>();
        var busy = serializer.Deserialize<Exception>(serializer.SerializeToArray<Exception>(FromStorageBridge(new RequestFailedException(new StatusResponse(503)))));
        var refused = serializer.Deserialize<Exception>(serializer.SerializeToArray<Exception>(FromStorageBridge(new RequestFailedException(new StatusResponse(413)))));

        // Orleans' exception codec carries message, stack, inner exceptions and data — not RequestFailedException.Status.
        var crossed = Assert.IsType<RequestFailedException>(Assert.IsType<OrleansException>(busy).InnerException);
        Assert.NotNull(refused);
        Assert.Equal(0, crossed.Status);
        Assert.Equal(503, FailureClassifier.StatusOf(crossed));
        Assert.Equal(FailureKind.Transient, FailureClassifier.Classify(busy).Kind);
        Assert.Equal(FailureKind.Handler, FailureClassifier.Classify(refused).Kind);
    }

    [Fact]
    public void An_injected_storage_fault_crosses_a_silo_as_itself_inside_the_bridge_exception()
    {
        var serializer = new ServiceCollection().AddSerializer(b => b.AddAssembly(typeof(StorageFaultException).Assembly))
            .BuildServiceProvider().GetRequiredService<Serializer>();
        var fault = new StorageFaultException(StorageNames.Ledgers, Ledger, StorageOperations.Write, StorageFaultMode.AfterCall);

        var crossed = serializer.Deserialize<Exception>(serializer.SerializeToArray<Exception>(FromStorageBridge(fault)));

        var inner = Assert.IsType<StorageFaultException>(Assert.IsType<OrleansException>(crossed).InnerException);
        Assert.Equal((StorageOperations.Write, StorageFaultMode.AfterCall), (inner.Operation, inner.Mode));
        Assert.Equal(FailureKind.Transient, FailureClassifier.Classify(crossed).Kind);
    }

    public static TheoryData<Exception> TransientInfrastructure => new()
    {
        new TimeoutException("Response did not arrive on time in 00:00:30 for message: Request ..."),
        new SiloUnavailableException("The target silo became unavailable for message: Request ..."),
        Internal<OrleansMessageRejectionException>("Forwarding failed: tried to forward message ... 2 times"),
        new ConnectionFailedException("Unable to connect to endpoint S127.0.0.1:11111:0"),
        new InconsistentStateException("ETag mismatch", "stored", "current"),
        FromStorageBridge(new RequestFailedException(0, "An error occurred while sending the request.", new System.Net.Http.HttpRequestException("Connection refused"))),
        new AggregateException("Retry failed after 3 tries.", new RequestFailedException(0, "An error occurred while sending the request.")),
        Fallback(typeof(InconsistentStateException).FullName!, "ETag mismatch"),
        Fallback("Azure.RequestFailedException", "Service request failed.\nStatus: 503 (Service Unavailable)"),
        new OrleansException("wrapper", new InvalidOperationException("outer", new TimeoutException("deep"))),
    };

    [Theory]
    [MemberData(nameof(TransientInfrastructure))]
    public void Storage_network_and_cluster_unavailability_is_transient(Exception error) =>
        Assert.Equal(FailureKind.Transient, FailureClassifier.Classify(error).Kind);

    public static TheoryData<Exception> HandlerFailures => new()
    {
        new DrillFailureException("drill: points always fails OrderPaid"),
        new InvalidOperationException("the coupon does not exist"),
        new ArgumentException("bad amount"),
        new OrleansException("Error from storage provider …", new SerializationException("state does not serialize")),
        new OrleansException("Error from storage provider …", new RequestFailedException(400, "Bad Request")),
        Fallback("Some.Downstream.RefusedException", "refused"),
        Fallback("Azure.RequestFailedException", "Service request failed.\nStatus: 404 (Not Found)"),
        // A drill is a handler failure wherever it sits, even next to something transient.
        new AggregateException(new TimeoutException("slow"), new DrillFailureException("drill")),
    };

    [Theory]
    [MemberData(nameof(HandlerFailures))]
    public void A_drill_and_every_other_exception_stay_handler_failures(Exception error) =>
        Assert.Equal(FailureKind.Handler, FailureClassifier.Classify(error).Kind);

    [Fact]
    public void An_error_text_keeps_the_first_line_and_is_capped_for_the_dead_letter_index()
    {
        var failure = FailureClassifier.Classify(new InvalidOperationException("first line\r\nsecond line"));
        Assert.Equal("InvalidOperationException: first line", failure.Description);

        var longOne = FailureClassifier.Classify(new TimeoutException(new string('x', 2000)));
        Assert.Equal(FailureClassifier.MaxErrorLength, longOne.Description.Length);
    }

    [Fact]
    public void The_give_up_reason_says_how_long_the_event_failed_transiently()
    {
        Assert.Equal("transient failures for 30 min: OrleansException > StorageFaultException: down",
            FailureClassifier.GaveUpWaiting(TimeSpan.FromMinutes(30.2), "OrleansException > StorageFaultException: down"));
        Assert.Equal(["450 ms", "12 s", "2 h", "2 h 5 min"],
            new[] { 0.45, 12.9, 7200, 7500 }.Select(s => FailureClassifier.Duration(TimeSpan.FromSeconds(s))));
    }

    [Fact]
    public void Transient_backoff_doubles_from_its_initial_delay_up_to_its_cap_with_half_of_it_random()
    {
        var options = new TransientRetryOptions { InitialBackoff = TimeSpan.FromSeconds(1), MaxBackoff = TimeSpan.FromSeconds(30) };
        var random = new Random(7);
        for (var failures = 1; failures <= 12; failures++)
        {
            var full = Math.Min(Math.Pow(2, failures - 1), 30);
            var delay = options.BackoffAfter(failures, random).TotalSeconds;
            Assert.InRange(delay, full / 2, full);
        }
    }

    /// <summary>An exception type whose constructors Orleans keeps to itself.</summary>
    private static T Internal<T>(string message) where T : Exception =>
        (T)Activator.CreateInstance(typeof(T), BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic, null, [message], null)!;

    /// <summary>What a receiver gets for an exception whose type it could not rebuild: the type's name and the message.</summary>
    private static UnavailableExceptionFallbackException Fallback(string typeName, string message)
    {
        var fallback = new UnavailableExceptionFallbackException(message, null!);
        typeof(UnavailableExceptionFallbackException).GetProperty(nameof(UnavailableExceptionFallbackException.ExceptionType))!.SetValue(fallback, typeName);
        return fallback;
    }

    /// <summary>An HTTP response with only a status, as the Azure SDK builds its RequestFailedException from.</summary>
    private sealed class StatusResponse(int status) : Response
    {
        public override int Status => status;

        public override string ReasonPhrase => status switch { 503 => "Service Unavailable", 413 => "Request Entity Too Large", _ => "Status" };

        public override Stream? ContentStream { get; set; }

        public override string ClientRequestId { get; set; } = "test";

        public override void Dispose()
        {
        }

        protected override bool ContainsHeader(string name) => false;

        protected override IEnumerable<HttpHeader> EnumerateHeaders() => [];

        protected override bool TryGetHeader(string name, [NotNullWhen(true)] out string? value)
        {
            value = null;
            return false;
        }

        protected override bool TryGetHeaderValues(string name, [NotNullWhen(true)] out IEnumerable<string>? values)
        {
            values = null;
            return false;
        }
    }
}
