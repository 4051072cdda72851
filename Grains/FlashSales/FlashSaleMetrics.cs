using System.Diagnostics.Metrics;
using OrderFlow.Contracts;
using OrderFlow.Grains.Telemetry;

namespace OrderFlow.Grains.FlashSales;

/// <summary>
/// A silo's flash-sale instruments on the <c>OrderFlow</c> meter (<c>/metrics</c>, <c>dotnet-counters</c>): every answer
/// this silo's fronts gave a buyer, by outcome, and how long it took; every placement this silo's drainers made, by
/// result. Tags are bounded (eight outcomes, four results) — never a sale, user or request id, whose number grows with
/// traffic; a sale's own figures are <c>flashsale status</c>. Counters are interlocked fields, read when a listener collects.
/// </summary>
public sealed class FlashSaleMetrics : IDisposable
{
    private static readonly AdmissionOutcome[] Outcomes = Enum.GetValues<AdmissionOutcome>();
    private static readonly KeyValuePair<string, object?>[] OutcomeTags =
        Outcomes.Select(o => new KeyValuePair<string, object?>("outcome", o.Name())).ToArray();

    private readonly Meter _meter = new(OrderFlowTelemetry.Name);
    private readonly long[] _answers = new long[Outcomes.Length];
    private readonly long[] _placements = new long[Enum.GetValues<PlacementResult>().Length];
    private readonly Histogram<double> _admission;

    public FlashSaleMetrics()
    {
        _meter.CreateObservableCounter("orderflow.flashsale.admissions", Answers, "{request}",
            "Buy requests answered by this silo, by outcome (queued, duplicate, sold_out, not_started, limit_reached, busy, unknown_sale, invalid_input)");
        _admission = _meter.CreateHistogram<double>("orderflow.flashsale.admission.duration", "s",
            "Time from a buy request reaching the sale's front on this silo to its answer (queued: after the durable write)",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] });
        _meter.CreateObservableCounter("orderflow.flashsale.placements", Placements, "{order}",
            "Orders the drain placed on this silo, by result: won (an order), out_of_stock (the sale ends sold out), refused, retry (placed again later)");
    }

    /// <summary>The meter: a test reads one silo's instruments by this instance.</summary>
    public Meter Meter => _meter;

    public long AnswersOf(AdmissionOutcome outcome) => Array.IndexOf(Outcomes, outcome) is var i and >= 0 ? Volatile.Read(ref _answers[i]) : 0;

    public long PlacementsOf(PlacementResult result) => Volatile.Read(ref _placements[(int)result]);

    public void Answered(AdmissionOutcome outcome, TimeSpan took)
    {
        var index = Array.IndexOf(Outcomes, outcome);
        if (index < 0)
        {
            return; // an outcome this build does not know: never fail the buyer's answer over a counter
        }

        Interlocked.Increment(ref _answers[index]);
        _admission.Record(took.TotalSeconds, OutcomeTags[index]);
    }

    public void Placed(PlacementResult result) => Interlocked.Increment(ref _placements[(int)result]);

    public void Dispose() => _meter.Dispose();

    private IEnumerable<Measurement<long>> Answers()
    {
        for (var i = 0; i < Outcomes.Length; i++)
        {
            yield return new Measurement<long>(Volatile.Read(ref _answers[i]), OutcomeTags[i]);
        }
    }

    private IEnumerable<Measurement<long>> Placements()
    {
        foreach (var result in Enum.GetValues<PlacementResult>())
        {
            yield return new Measurement<long>(Volatile.Read(ref _placements[(int)result]), new KeyValuePair<string, object?>("result", Name(result)));
        }
    }

    private static string Name(PlacementResult result) => result switch
    {
        PlacementResult.Won => "won",
        PlacementResult.OutOfStock => "out_of_stock",
        PlacementResult.Refused => "refused",
        _ => "retry",
    };
}

/// <summary>What one drain placement came to.</summary>
public enum PlacementResult
{
    Won = 0,
    OutOfStock = 1,
    Refused = 2,
    Retry = 3,
}
