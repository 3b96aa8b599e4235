using KvmTyped.Cli;

namespace KvmTyped.EndToEnd.Tests;

/// <summary>The kvmtyped command line run in this process, as its Main runs it, with what it printed.</summary>
internal static class Tool
{
    /// <summary>Runs <c>kvmtyped ARGS</c>: the exit code, standard output and standard error.</summary>
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var code = CommandLine.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }
}
