namespace KvmTyped.Cli;

/// <summary>The kvmtyped command line.</summary>
public static class CommandLine
{
    /// <summary>Runs the tool with the given arguments and writers; returns the exit code.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(stderr);
        stderr.WriteLine("kvmtyped: no command given");
        return 2;
    }
}
