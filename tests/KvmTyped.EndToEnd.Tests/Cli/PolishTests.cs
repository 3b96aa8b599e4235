using System.Text.Json;
using KvmTyped.TestSupport;
using static KvmTyped.EndToEnd.Tests.Tool;

namespace KvmTyped.EndToEnd.Tests.Cli;

/// <summary>The tool's small manners, one test each: its name in usage lines, rd's options and their checks, split's
/// JSON, parse errors and missing files in the user's words, plurals, bounded schema errors, documented commands.</summary>
public sealed class PolishTests : IDisposable
{
    private static readonly string Folder = Path.Combine(Fixtures.RepoRoot, "samples", "linux-amd64");
    private static readonly string Map = Path.Combine(Folder, "System.map-6.1.0-56-amd64");
    private static readonly string[] Files = ["-n", Map, "-c", Path.Combine(Folder, "vmcore.kdump")];
    private readonly string _dir = Directory.CreateTempSubdirectory("kvmtyped-polish-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Usage_lines_name_the_tool_kvmtyped()
    {
        var (code, o, _) = Run("--help");
        Assert.Equal(0, code);
        Assert.Contains("Usage:" + Environment.NewLine + "  kvmtyped [command] [options]", o, StringComparison.Ordinal);
        Assert.Contains("  kvmtyped rd <address> [options]", Run("rd", "--help").Out, StringComparison.Ordinal);
        Assert.DoesNotContain("KvmTyped.Cli", o + Run("rd", "--help").Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Rd_help_lists_one_dash_s_and_no_internal_default()
    {
        var (_, o, _) = Run("rd", "--help");
        var dashS = o.Split(Environment.NewLine).Where(l => l.TrimStart().StartsWith("-s,", StringComparison.Ordinal) || l.TrimStart().StartsWith("-s ", StringComparison.Ordinal)).ToList();
        Assert.Equal(["-s, --string"], dashS.Select(l => l.Trim()[..12]));
        Assert.DoesNotContain("[default: -1]", o, StringComparison.Ordinal);
        // -s still names the swap file outside rd, and rd's -s is still --string.
        var (code, _, err) = Run(["ps", "-s", Path.Combine(_dir, "missing-swap"), .. Files]);
        Assert.Equal(1, code);
        Assert.Contains("missing-swap: No such file or directory", err, StringComparison.Ordinal);
        var (rd, banner, _) = Run(["rd", "linux_banner", "-s", .. Files]);
        Assert.Equal(0, rd);
        Assert.StartsWith("Linux version 6.1.0-56-amd64", banner);
    }

    [Theory]
    [InlineData("-5")]
    [InlineData("0")]
    public void Rd_refuses_a_length_below_one(string length)
    {
        var (code, o, err) = Run(["rd", "init_task", "-l", length, .. Files]);
        Assert.Equal(2, code);
        Assert.Equal("", o);
        Assert.Equal($"kvmtyped: -l {length}: the length is a number of bytes, 1 or more" + Environment.NewLine, err);
    }

    [Fact]
    public void Rd_refuses_a_length_that_is_not_a_whole_number_of_words()
    {
        var (code, o, err) = Run(["rd", "init_task", "-w", "8", "-l", "3", .. Files]);
        Assert.Equal(2, code);
        Assert.Equal("", o);
        Assert.Equal("kvmtyped: -l 3 is not a whole number of 8-byte words" + Environment.NewLine, err);
        var (ok, words, _) = Run(["rd", "init_task", "-w", "8", "-l", "16", .. Files]);
        Assert.Equal(0, ok);
        Assert.Equal(3, words.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries).Length); // address and two words
    }

    [Fact]
    public void Split_json_is_json()
    {
        var (code, o, err) = Run(["split", Path.Combine(_dir, "out"), "--json", .. Files]);
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(o);
        var files = doc.RootElement.EnumerateArray().ToList();
        Assert.True(files.Count >= 2);
        Assert.Equal(Path.Combine(_dir, "out", "vmcore"), files[0].GetProperty("path").GetString());
        foreach (var f in files)
            Assert.Equal(new FileInfo(f.GetProperty("path").GetString()!).Length, f.GetProperty("size").GetInt64());
    }

    [Fact]
    public void Parse_errors_say_what_was_expected_in_the_users_words()
    {
        var (code, _, err) = Run(["rd", "init_task", "-l", "abc", .. Files]);
        Assert.Equal(2, code);
        Assert.Contains("Cannot parse argument 'abc' for option '--length' as a whole number.", err, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", err, StringComparison.Ordinal);
        var (_, _, err2) = Run(["split", _dir, "--core-size", "x", .. Files]);
        Assert.Contains("as a whole number", err2, StringComparison.Ordinal);
    }

    [Fact]
    public void An_address_expression_that_wraps_is_refused()
    {
        var (code, o, err) = Run(["rd", "init_task+0x100000000000", .. Files]);
        Assert.Equal(1, code);
        Assert.Equal("", o);
        Assert.Contains("+ 0x100000000000 overflows the 64-bit virtual address space", err, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_file_is_said_the_same_way_by_every_command()
    {
        var missing = Path.Combine(_dir, "nope");
        var messages = new[]
        {
            Run("info", "-n", missing, "-c", Files[3]).Err,
            Run("info", "-n", Map, "-c", missing).Err,
            Run("ps", "-n", Map, "-c", Files[3], "--types", missing).Err,
            Run("info", "-n", Map, "-c", Files[3], "--swap", missing).Err,
            Run("btf", "dump", missing).Err,
            Run("schema", "layout", missing).Err,
            Run("schema", "check", missing, "--btf", Fixtures.Get("i386/vmlinux-6.1.0-50-686-pae.btf")).Err,
            Run("schema", "import", "task_struct", "--btf", missing).Err,
        };
        foreach (var m in messages)
            Assert.StartsWith($"kvmtyped: {missing}: No such file or directory", m);
    }

    [Fact]
    public void Info_counts_one_range_in_the_singular()
    {
        var raw = HonestAnswersTests.RawCopyOfSample(_dir);
        var (code, o, err) = Run("info", "--raw", "-n", Map, "-c", raw);
        Assert.True(code == 0, err);
        Assert.Contains("memory:       1 range, ", o, StringComparison.Ordinal);
        Assert.Contains("memory:       3 ranges, ", Run(["info", .. Files]).Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Schema_layout_of_a_file_that_is_not_c_stops_after_ten_errors()
    {
        var readme = Path.Combine(Fixtures.RepoRoot, "README.md");
        var (code, _, err) = Run("schema", "layout", readme);
        Assert.Equal(1, code);
        var lines = err.TrimEnd().Split(Environment.NewLine);
        Assert.Equal(11, lines.Length);
        Assert.Matches(@"^kvmtyped: .*README\.md: \d+ more errors not shown \(is it a C schema\?\)$", lines[^1]);
    }

    [Fact]
    public void Docs_cli_md_documents_every_command_and_common_option()
    {
        var doc = File.ReadAllText(Path.Combine(Fixtures.RepoRoot, "docs", "cli.md"));
        foreach (var name in new[] { "`info`", "`nlist ", "`sym ", "`rd ", "`split ", "`btf dump ", "`schema layout ", "`schema import ", "`schema check ", "`struct ", "`ps`", "`log`", "`uname`", "`bt ", "`mod " })
            Assert.Contains(name, doc, StringComparison.Ordinal);
        foreach (var option in new[] { "`--raw`", "`--part PATH`", "`--nsrch`", "`--write`", "`--json`", "`--types FILE`", "`--debug`" })
            Assert.Contains(option, doc, StringComparison.Ordinal);
    }
}
