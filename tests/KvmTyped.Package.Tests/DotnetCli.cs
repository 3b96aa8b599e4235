using System.Diagnostics;
using System.Reflection;

namespace KvmTyped.Package.Tests;

/// <summary>Runs the dotnet CLI as a user would, from a folder of the test's, with the settings of the `dotnet test`
/// that runs this process removed (a child build must find its own MSBuild) and NuGet's package cache redirected to a
/// folder of the test's, so a copy of the package that an earlier pack left in the user's cache is never used.</summary>
internal static class DotnetCli
{
    /// <summary>The configuration this test assembly was built in; the packed library is the one built beside it.</summary>
    public static string Configuration { get; } =
        typeof(DotnetCli).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "KvmTyped.Configuration").Value!;

    /// <summary>Runs <c>dotnet ARGS</c> in <paramref name="directory"/>; returns the exit code and stdout + stderr.</summary>
    public static (int Code, string Output) Run(string directory, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var (code, stdout, stderr) = RunSplit(directory, environment, args);
        return (code, stdout + stderr);
    }

    /// <summary>Runs <c>dotnet ARGS</c> in <paramref name="directory"/>; returns the exit code, stdout and stderr apart.</summary>
    public static (int Code, string Stdout, string Stderr) RunSplit(string directory, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (var a in args) start.ArgumentList.Add(a);
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase)
                     || k.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase) || k.StartsWith("DOTNET_HOST", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            start.Environment.Remove(key);
        }
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        if (environment is not null)
        {
            foreach (var (key, value) in environment) start.Environment[key] = value;
        }
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(10)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"dotnet {string.Join(' ', args)} did not finish within 10 minutes in {directory}");
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Runs and asserts success, showing the command's output when it fails.</summary>
    public static string Succeed(string directory, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var (code, output) = Run(directory, environment, args);
        Assert.True(code == 0, $"dotnet {string.Join(' ', args)} exited {code} in {directory}:\n{output}");
        return output;
    }
}
