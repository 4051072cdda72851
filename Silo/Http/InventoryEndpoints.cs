using Microsoft.AspNetCore.Http.HttpResults;
using OrderFlow.Contracts;

namespace OrderFlow.Silo.Http;

/// <summary>Body of <c>PUT /stock/{sku}</c>: units that can still be reserved, absolute.</summary>
public sealed record SetStockRequest(long Available);

/// <summary>Body of <c>PUT /coupons/{couponId}</c>: uses in total, absolute.</summary>
public sealed record IssueCouponRequest(long Uses);

/// <summary><c>/stock</c> and <c>/coupons</c>: the CLI's <c>stock set|show</c> and <c>coupon issue|show</c>.</summary>
public static class InventoryEndpoints
{
    public static IEndpointRouteBuilder MapInventory(this IEndpointRouteBuilder app)
    {
        var stock = app.MapGroup("/stock").WithTags("Stock and coupons");
        stock.MapPut("/{sku}", SetStockAsync)
            .WithName("SetStock").WithSummary($"Sets how many units of a SKU can still be reserved (0-{InventoryLimits.MaxStock}); reserved and sold units are not touched")
            .ProducesProblem(StatusCodes.Status400BadRequest);
        stock.MapGet("/{sku}", ShowStockAsync)
            .WithName("GetStock").WithSummary("A SKU's stock: available, reserved, sold, pending")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);

        var coupons = app.MapGroup("/coupons").WithTags("Stock and coupons");
        coupons.MapPut("/{couponId}", IssueCouponAsync)
            .WithName("IssueCoupon").WithSummary($"Issues a coupon with its total uses (1-{InventoryLimits.MaxCouponUses}); refused below the uses already reserved or redeemed")
            .ProducesProblem(StatusCodes.Status400BadRequest);
        coupons.MapGet("/{couponId}", ShowCouponAsync)
            .WithName("GetCoupon").WithSummary("A coupon's uses: issued, reserved, redeemed, available, pending")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    // The bounds are the grain's (InventoryLimits, refused InvalidCommand before any write), as for the CLI.
    private static async Task<Results<Ok<StockLevel>, ProblemHttpResult>> SetStockAsync(string sku, SetStockRequest body, IGrainFactory grains)
    {
        if (Problems.FirstInvalid(Ids.Problem(sku, "SKU")) is { } invalid)
        {
            return invalid;
        }

        var result = await grains.GetGrain<IStockGrain>(sku).SetAvailableAsync(body.Available);
        return result.Accepted ? TypedResults.Ok(result.Level) : Refused(result.Code, $"stock {sku}: {result.Message}");
    }

    private static async Task<Results<Ok<StockLevel>, ProblemHttpResult>> ShowStockAsync(string sku, IGrainFactory grains)
    {
        if (Problems.FirstInvalid(Ids.Problem(sku, "SKU")) is { } invalid)
        {
            return invalid;
        }

        var level = await grains.GetGrain<IStockGrain>(sku).GetAsync();
        return level.Exists ? TypedResults.Ok(level) : Problems.Of(ErrorCodes.StockNotFound, $"stock {sku}: no stock record (orders naming it are refused UnknownSku)");
    }

    private static async Task<Results<Ok<CouponLevel>, ProblemHttpResult>> IssueCouponAsync(string couponId, IssueCouponRequest body, IGrainFactory grains)
    {
        if (Problems.FirstInvalid(Ids.Problem(couponId, "coupon id")) is { } invalid)
        {
            return invalid;
        }

        var result = await grains.GetGrain<ICouponGrain>(couponId).IssueAsync(body.Uses);
        return result.Accepted ? TypedResults.Ok(result.Level) : Refused(result.Code, $"coupon {couponId}: {result.Message}");
    }

    private static async Task<Results<Ok<CouponLevel>, ProblemHttpResult>> ShowCouponAsync(string couponId, IGrainFactory grains)
    {
        if (Problems.FirstInvalid(Ids.Problem(couponId, "coupon id")) is { } invalid)
        {
            return invalid;
        }

        var level = await grains.GetGrain<ICouponGrain>(couponId).GetAsync();
        return level.Exists ? TypedResults.Ok(level) : Problems.Of(ErrorCodes.CouponNotFound, $"coupon {couponId}: never issued (orders using it are refused CouponUnavailable)");
    }

    private static ProblemHttpResult Refused(OrderErrorCode? code, string? message) =>
        Problems.Of(ErrorCodes.For(code ?? OrderErrorCode.InvalidCommand), message ?? "refused");
}
