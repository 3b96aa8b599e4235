namespace KvmTyped.Cli;

internal static class Program
{
    private static int Main(string[] args)
    {
        // An exception on another thread (a timer drawing progress) bypasses CommandLine.Guard: report it as the
        // internal error it is, in one line, instead of the runtime's abort.
        AppDomain.CurrentDomain.UnhandledException += (_, e) =>
        {
            Console.Error.WriteLine($"kvmtyped: internal error ({e.ExceptionObject.GetType().Name}); rerun with --debug for the stack trace");
            if (args.Contains("--debug"))
                Console.Error.WriteLine(e.ExceptionObject.ToString());
            Environment.Exit(CommandLine.InternalError);
        };
        return CommandLine.Run(args, Console.Out, Console.Error);
    }
}
