using OrderFlow.Contracts;

namespace OrderFlow.Tests;

/// <summary>A number's text is accepted only when the decimal it parses to is exactly that number.</summary>
public sealed class DecimalTextTests
{
    [Theory]
    [InlineData("19.90", true)]
    [InlineData("19.9000", true)]
    [InlineData("0019.9", true)]
    [InlineData("1.99e1", true)]
    [InlineData("1990E-2", true)]
    [InlineData("-0.000", true)]
    [InlineData("0.0000000000000000000000000001", true)] // 28 places: a decimal holds it
    [InlineData("79228162514264337593543950335", true)] // decimal.MaxValue, 29 digits
    [InlineData("1.000000000000000000000000000001", false)] // 31 significant digits: rounds to 1
    [InlineData("0.999999999999999999999999999999", false)] // rounds to 1
    [InlineData("0.00000000000000000000000000001", false)] // 29 places: rounds to 0
    [InlineData("1e-29", false)]
    public void Only_text_the_decimal_holds_exactly_is_exact(string text, bool exact)
    {
        var parsed = decimal.Parse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture);

        Assert.Equal(exact, DecimalText.IsExact(text, parsed));
    }

    [Fact]
    public void Text_that_is_not_a_number_is_never_exact() => Assert.False(DecimalText.IsExact("1.2.3", 1.2m));
}
