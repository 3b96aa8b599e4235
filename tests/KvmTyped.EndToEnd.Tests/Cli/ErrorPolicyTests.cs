using KvmTyped.Cli;

namespace KvmTyped.EndToEnd.Tests.Cli;

/// <summary>The tool's one error policy: library errors and I/O errors are messages with exit 1, anything else is an
/// internal error with exit 70 and one line, the stack only with --debug.</summary>
public class ErrorPolicyTests
{
    private static (int Code, string Err) Guard(Func<int> command, bool debug = false)
    {
        var e = new StringWriter();
        var code = CommandLine.Guard(command, e, debug);
        return (code, e.ToString());
    }

    [Fact]
    public void A_library_error_is_its_message_and_exit_1()
    {
        var (code, err) = Guard(() => throw new KvmFormatException("/d/vmcore", 0x40, "unknown page compression flags 0x80"));
        Assert.Equal(CommandLine.Failure, code);
        Assert.Equal("kvmtyped: /d/vmcore: at offset 0x40: unknown page compression flags 0x80" + Environment.NewLine, err);
    }

    [Fact]
    public void An_io_error_is_its_message_and_exit_1()
    {
        var (code, err) = Guard(() => throw new FileNotFoundException("gone", "/no/such/file"));
        Assert.Equal(CommandLine.Failure, code);
        Assert.Equal("kvmtyped: /no/such/file: No such file or directory" + Environment.NewLine, err);
        (code, err) = Guard(() => throw new UnauthorizedAccessException("Access to the path '/root/x' is denied."));
        Assert.Equal(CommandLine.Failure, code);
        Assert.Equal("kvmtyped: Access to the path '/root/x' is denied." + Environment.NewLine, err);
    }

    [Fact]
    public void Any_other_exception_is_one_line_naming_a_bug_and_exit_70()
    {
        var (code, err) = Guard(() => throw new InvalidOperationException("first\nsecond"));
        Assert.Equal(CommandLine.InternalError, code);
        Assert.Equal(70, code);
        var lines = err.TrimEnd().Split(Environment.NewLine);
        Assert.Single(lines);
        Assert.StartsWith("kvmtyped: internal error (InvalidOperationException: first second)", lines[0]);
        Assert.Contains("--debug", lines[0]);
        Assert.DoesNotContain(nameof(Any_other_exception_is_one_line_naming_a_bug_and_exit_70), err);
    }

    [Fact]
    public void Debug_prints_the_stack()
    {
        var (code, err) = Guard(Thrower, debug: true);
        Assert.Equal(CommandLine.InternalError, code);
        Assert.Contains(nameof(Thrower), err);
        (code, err) = Guard(() => throw new KvmException("plain"), debug: true);
        Assert.Equal(CommandLine.Failure, code);
        Assert.StartsWith("kvmtyped: plain" + Environment.NewLine, err);
        Assert.Contains("KvmTyped.KvmException: plain", err);
    }

    [Fact]
    public void Commands_are_covered_without_catching_anything_and_debug_is_accepted_everywhere()
    {
        // A file the command reads that does not exist: the command itself catches nothing about it.
        var e = new StringWriter();
        var code = CommandLine.Run(["info", "--debug", "-n", "/no/such/System.map", "-c", "/no/such/vmcore"], new StringWriter(), e);
        Assert.Equal(CommandLine.Failure, code);
        Assert.StartsWith("kvmtyped: ", e.ToString());
        Assert.DoesNotContain("internal error", e.ToString());
    }

    private static int Thrower() => throw new ArgumentException("boom");
}
