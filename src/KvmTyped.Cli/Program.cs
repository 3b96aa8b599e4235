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
        // Redirected output is written in blocks of 8 KiB characters, as C's stdio does for a pipe or a file (BUFSIZ;
        // a line a write system call costs more than a short command's work); a terminal gets each line as it is
        // written. A larger buffer costs more than it saves: its memory is zeroed, page by page, at every start.
        var stdout = Console.IsOutputRedirected
            ? new StreamWriter(Console.OpenStandardOutput(), new System.Text.UTF8Encoding(false), 1 << 13) { AutoFlush = false }
            : Console.Out;
        var code = CommandLine.Run(args, stdout, Console.Error);
        try
        {
            stdout.Flush();
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"kvmtyped: standard output: {e.Message}");
            return CommandLine.Failure;
        }
        return code;
    }
}
