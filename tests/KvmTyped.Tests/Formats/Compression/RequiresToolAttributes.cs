using System.Diagnostics;

namespace KvmTyped.Tests.Formats.Compression;

/// <summary>Whether a command-line tool used as a test oracle is installed.</summary>
internal static class OracleTools
{
    private static readonly Dictionary<string, bool> Cache = new(StringComparer.Ordinal);

    public static bool Has(string tool)
    {
        lock (Cache)
        {
            if (!Cache.TryGetValue(tool, out var has))
                Cache[tool] = has = Environment.GetEnvironmentVariable("PATH")?.Split(':').Any(d => d.Length > 0 && File.Exists(Path.Combine(d, tool))) == true;
            return has;
        }
    }

    public static string SkipReason(string tool) => $"needs the `{tool}` tool as an oracle, which is not installed (Debian package {tool})";

    /// <summary>Runs a tool, failing the test with its stderr when it fails.</summary>
    public static void Run(string tool, string arguments, string? stdoutFile = null)
    {
        var psi = new ProcessStartInfo(tool, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        if (stdoutFile is not null)
        {
            using var f = File.Create(stdoutFile);
            p.StandardOutput.BaseStream.CopyTo(f);
        }
        else
            p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{tool} {arguments} failed: {err.Result}");
    }
}

/// <summary>A fact that is skipped, naming the tool, when an oracle tool is not installed.</summary>
public sealed class RequiresToolFactAttribute : FactAttribute
{
    /// <summary>Creates the attribute.</summary>
    public RequiresToolFactAttribute(string tool)
    {
        if (!OracleTools.Has(tool))
            Skip = OracleTools.SkipReason(tool);
    }
}

/// <summary>A theory that is skipped, naming the tool, when an oracle tool is not installed.</summary>
public sealed class RequiresToolTheoryAttribute : TheoryAttribute
{
    /// <summary>Creates the attribute.</summary>
    public RequiresToolTheoryAttribute(string tool)
    {
        if (!OracleTools.Has(tool))
            Skip = OracleTools.SkipReason(tool);
    }
}
