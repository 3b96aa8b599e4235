using System.CommandLine;
using System.CommandLine.Parsing;

namespace KvmTyped.Cli;

/// <summary>The kvmtyped command line: options common to every command, and the commands.</summary>
public static class CommandLine
{
    /// <summary>Exit code of a command that failed (the errstr contract's message is on stderr).</summary>
    public const int Failure = 1;

    /// <summary>The tool's name, as usage lines and messages give it.</summary>
    public const string ToolName = "kvmtyped";

    /// <summary>Exit code of a usage error.</summary>
    public const int Usage = 2;

    /// <summary>Exit code of an internal error: an exception the library does not raise on purpose, i.e. a bug
    /// (EX_SOFTWARE in sysexits.h).</summary>
    public const int InternalError = 70;

    /// <summary>Runs the tool with the given arguments and writers; returns the exit code.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        // Whatever a command prints may hold bytes from a hostile file: no control character reaches the terminal.
        stdout = Output.Escaping(stdout);
        stderr = Output.Escaping(ApiTerms.Writer(stderr));
        return Guard(() => Parse(args, stdout, stderr), stderr, debug: args.Contains("--debug"));
    }

    private static int Parse(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var common = new CommonOptions();
        // A Command named as the tool is installed, not a RootCommand, which takes the name of the executable
        // (KvmTyped.Cli when run from a build) for its usage lines.
        var root = new Command(ToolName, "kvmtyped: read a Linux kernel's memory from a crash dump, a VM image or the live kernel")
        {
            new System.CommandLine.Help.HelpOption(),
            new VersionOption(),
        };
        common.AddTo(root);
        root.Subcommands.Add(InfoCommand.Build(common, stdout, stderr));
        root.Subcommands.Add(NlistCommand.Build(common, stdout, stderr));
        root.Subcommands.Add(SymCommand.Build(common, stdout, stderr));
        root.Subcommands.Add(RdCommand.Build(common, stdout, stderr));
        root.Subcommands.Add(BuildBtf(common, stdout, stderr));
        root.Subcommands.Add(SplitCommand.Build(common, stdout, stderr));
        root.Subcommands.Add(BuildSchema(common, stdout, stderr));
        root.Subcommands.Add(StructCommand.Build(common, stdout, stderr));
        root.Subcommands.Add(PsCommand.Build(common, stdout, stderr));
        root.Subcommands.Add(LogCommand.Build(common, stdout, stderr));
        root.Subcommands.Add(UnameCommand.Build(common, stdout, stderr));
        root.Subcommands.Add(BtCommand.Build(common, stdout, stderr));
        root.Subcommands.Add(ModCommand.Build(common, stdout, stderr));

        // An action of its own, so that the parser does not report a missing command as an error of its own words.
        root.SetAction(_ =>
        {
            stderr.WriteLine("kvmtyped: no command given; try 'kvmtyped --help'");
            return Usage;
        });
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors)
                stderr.WriteLine($"kvmtyped: {UserTerms(e.Message)}");
            stderr.WriteLine("Try 'kvmtyped --help'.");
            return Usage;
        }
        return parsed.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
    }

    /// <summary>The one error policy of the tool, around parsing and every command: a <see cref="KvmException"/> (a damaged or
    /// hostile file, a failed read, a failed open) or an I/O error is printed as <c>kvmtyped: message</c> and
    /// exits <see cref="Failure"/>; any other exception is a bug, printed as one line that says so and how to see
    /// the stack (<c>--debug</c>), and exits <see cref="InternalError"/>. Commands need not catch anything to be
    /// covered; with <paramref name="debug"/> every error is followed by its stack trace.</summary>
    internal static int Guard(Func<int> command, TextWriter stderr, bool debug)
    {
        try
        {
            return command();
        }
        catch (Exception e) when (e is KvmException or IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"kvmtyped: {UserMessage(e)}");
            if (debug)
                stderr.WriteLine(e.ToString());
            return Failure;
        }
        catch (Exception e)
        {
            stderr.WriteLine(debug
                ? $"kvmtyped: internal error: {e}"
                : $"kvmtyped: internal error ({e.GetType().Name}: {OneLine(e.Message)}); rerun with --debug for the stack trace");
            return InternalError;
        }
    }

    private static string UserMessage(Exception e) => e switch
    {
        FileNotFoundException { FileName: { } f } => $"{f}: {Output.FileError(e)}",
        _ => OneLine(e.Message),
    };

    /// <summary>A parse error in the user's words: the parser names .NET types ("as expected type 'System.Int32'").</summary>
    internal static string UserTerms(string message) => System.Text.RegularExpressions.Regex.Replace(message,
        @"as expected type '(?:System\.Nullable`1\[)?System\.(\w+)(?:\[\])?\]?'", m => "as " + (m.Groups[1].Value switch
        {
            "Int32" or "Int64" or "UInt32" or "UInt64" or "Int16" or "UInt16" or "Byte" => "a whole number",
            "Double" or "Single" or "Decimal" => "a number",
            "Boolean" => "true or false",
            _ => "a " + m.Groups[1].Value.ToLowerInvariant(),
        }), System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    private static string OneLine(string message) => message.ReplaceLineEndings(" ");

    private static Command BuildSchema(CommonOptions common, TextWriter stdout, TextWriter stderr)
    {
        var file = new Argument<string>("file") { Description = "a C schema file (struct, union, enum, typedef declarations)" };
        var model = new Option<string?>("--model") { Description = "ilp32 or lp64 (default lp64)" };
        var layout = new Command("layout", "print the ILP32 or LP64 layout of every struct and union in a schema file, computed as the generator does") { file, model };
        layout.SetAction(r => SchemaLayoutCommand.Run(r.GetValue(file)!, r.GetValue(model), r.GetValue(common.Json), stdout, stderr));
        return new Command("schema", "struct schemas") { layout, SchemaImportCommand.Build(common, stdout, stderr), SchemaCheckCommand.Build(common, stdout, stderr) };
    }

    private static Command BuildBtf(CommonOptions common, TextWriter stdout, TextWriter stderr)
    {
        var file = new Argument<string>("file") { Description = "raw BTF (e.g. /sys/kernel/btf/vmlinux) or an ELF file with a .BTF section" };
        var types = new Argument<string[]>("type") { Arity = ArgumentArity.ZeroOrMore, Description = "struct or union names (default: all)" };
        var dump = new Command("dump", "print structs with member offsets and sizes, as pahole does") { file, types };
        dump.SetAction(r => BtfDumpCommand.Run(r.GetValue(file)!, r.GetValue(types) ?? [], r.GetValue(common.Json), stdout, stderr));
        return new Command("btf", "BTF type information") { dump };
    }
}

/// <summary>Options every command takes: which kernel image to open, and how.</summary>
internal sealed class CommonOptions
{
    public Option<string?> Namelist { get; } = new("--namelist", "-n") { Description = "namelist: vmlinux, System.map or kallsyms (default: the running kernel's symbols)", Recursive = true };
    public Option<string?> Core { get; } = new("--core", "-c") { Description = "corefile: ELF vmcore, kdump-compressed dump, LiME/AVML image, or with --raw a raw memory image (default: the live kernel)", Recursive = true };
    public Option<string?> Swap { get; } = new("--swap") { Description = "swap device or file (also -s, but in rd, where -s is --string)", Recursive = true };

    /// <summary>-s for --swap: a separate, hidden option, so that rd's own -s (--string, as in crash) is the only -s its
    /// help lists.</summary>
    public Option<string?> SwapShort { get; } = new("-s") { Hidden = true, Recursive = true };
    public Option<bool> NoSearch { get; } = new("--nsrch") { Description = "KVM_NSRCH: open even when section files named by the core are missing", Recursive = true };
    public Option<bool> Write { get; } = new("--write") { Description = "open the corefile read-write (O_RDWR)", Recursive = true };
    public Option<string[]> Parts { get; } = new("--part") { Description = "another file of a split kdump set (makedumpfile --split), opened with the core; repeat for each", Recursive = true, Arity = ArgumentArity.ZeroOrMore };
    public Option<bool> Raw { get; } = new("--raw") { Description = "read the core as a raw physical memory image (byte N is physical address N); without it a core must be an ELF core, a kdump-compressed file or a LiME/AVML image", Recursive = true };
    public Option<bool> Json { get; } = new("--json") { Description = "print JSON", Recursive = true };
    public Option<string?> Btf { get; } = new("--types", "--btf") { Description = "file with the kernel's types, when neither the namelist nor the image has them: raw BTF, an ELF file with .BTF, or a DWARF vmlinux (converted once, then cached)", Recursive = true };
    public Option<bool> Debug { get; } = new("--debug") { Description = "print the stack trace of an error", Recursive = true };

    public void AddTo(Command root)
    {
        root.Options.Add(Namelist);
        root.Options.Add(Core);
        root.Options.Add(Swap);
        root.Options.Add(SwapShort);
        root.Options.Add(NoSearch);
        root.Options.Add(Write);
        root.Options.Add(Parts);
        root.Options.Add(Raw);
        root.Options.Add(Json);
        root.Options.Add(Btf);
        root.Options.Add(Debug);
    }

    /// <summary>Opens the image with the errstr contract: errors go to stderr as "kvmtyped: message".</summary>
    /// <param name="r">The parsed command line.</param>
    /// <param name="stderr">Where errors go.</param>
    /// <param name="symbolsOnly">The command reads no memory: open the namelist alone where that gives running addresses
    /// (the running kernel's kallsyms, no core named), so it works where /proc/kcore cannot be read.</param>
    /// <param name="refuseUnfitTypes">When a type file is given (--types), refuse to go on unless it fits the kernel
    /// (<see cref="Kvm.TryGetBtf"/>): whatever the command reads, a type file of another kernel is a mistake to report,
    /// not to work around. <c>info</c> reports it in its own output instead.</param>
    public Kvm? Open(ParseResult r, TextWriter stderr, bool symbolsOnly = false, bool refuseUnfitTypes = true)
    {
        var kvm = OpenImage(r, stderr, symbolsOnly);
        if (kvm is null || !refuseUnfitTypes || kvm.TypesPath is null || kvm.TryGetBtf(out _, out var why))
            return kvm;
        stderr.WriteLine($"kvmtyped: {why}");
        kvm.Dispose();
        return null;
    }

    private Kvm? OpenImage(ParseResult r, TextWriter stderr, bool symbolsOnly)
    {
        symbolsOnly &= r.GetValue(Namelist) is null && r.GetValue(Core) is null && !r.GetValue(Write);
        var flags = (r.GetValue(Write) ? KvmOpenFlags.ReadWrite : KvmOpenFlags.ReadOnly) | (r.GetValue(NoSearch) ? KvmOpenFlags.NoSearch : 0);
        using var busy = TerminalBusy.Start(stderr, "opening " + (r.GetValue(Core) ?? (symbolsOnly ? "the live kernel's symbols" : "the live kernel")));
        try
        {
            return Kvm.Open(r.GetValue(Namelist), r.GetValue(Core), r.GetValue(Swap) ?? r.GetValue(SwapShort), flags, "kvmtyped", new KvmOpenOptions { SymbolsOnly = symbolsOnly, ErrorWriter = TerminalBusy.Guard(busy, stderr), TypesPath = r.GetValue(Btf), RawImage = r.GetValue(Raw), SplitFiles = r.GetValue(Parts) is { Length: > 0 } parts ? parts : null });
        }
        catch (KvmException)
        {
            return null;
        }
    }
}
