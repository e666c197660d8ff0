using System.Text.RegularExpressions;

namespace Ddvi.Cli;

/// <summary>Rewrites the command-line parser's messages that name .NET types into what the option expects, in words.</summary>
internal static partial class ParseErrors
{
    [GeneratedRegex(@"^Cannot parse argument '(?<value>.*)' for option '(?<option>[^']+)' as expected type '(?<type>[^']+)'\.?$", RegexOptions.Singleline)]
    private static partial Regex BadValue();

    public static string Plain(string message)
    {
        var match = BadValue().Match(message);
        if (!match.Success) return message;
        string type = match.Groups["type"].Value;
        string expected = type.Contains("System.Double", StringComparison.Ordinal) || type.Contains("System.Single", StringComparison.Ordinal)
            ? "a number (such as 0.001 or 1e-3)"
            : type.Contains("System.Int", StringComparison.Ordinal) || type.Contains("System.UInt", StringComparison.Ordinal)
                ? "a whole number"
                : type.Contains("System.Boolean", StringComparison.Ordinal) ? "true or false" : "a value of another form";
        return $"{match.Groups["option"].Value} expects {expected}, got '{match.Groups["value"].Value}'";
    }
}
