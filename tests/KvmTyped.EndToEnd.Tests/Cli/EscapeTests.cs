using KvmTyped.Cli;

namespace KvmTyped.EndToEnd.Tests.Cli;

/// <summary>The tool's one escaping function, and the writers every command prints through.</summary>
public class EscapeTests
{
    [Fact]
    public void Control_characters_become_hex_escapes_as_dmesg_prints_them()
    {
        Assert.Equal("plain text\twith tab", Output.Escape("plain text\twith tab"));
        Assert.Equal("a\\x1b[31mb\\x0dc\\x0bd\\x0ae\\x00\\x7f\\x9b", Output.Escape("a\u001b[31mb\rc\vd\ne\0\u007f\u009b"));
        Assert.Equal("line\none\\x0d", Output.Escape("line\none\r", keepNewlines: true));
        Assert.Equal("ünïcode ✓", Output.Escape("ünïcode ✓"));
    }

    [Fact]
    public void The_escaping_writer_escapes_spans_and_string_builders_as_strings()
    {
        var inner = new StringWriter();
        var w = Output.Escaping(inner);
        w.Write("plain ".AsSpan());
        w.Write("a\u001b[31mb\rc\n".AsSpan());
        w.Write(new System.Text.StringBuilder("x\u009by").Append('\t').Append("z\n"));
        Assert.Equal("plain a\\x1b[31mb\\x0dc\nx\\x9by\tz\n", inner.ToString());
    }

    [Fact]
    public void Every_command_prints_through_the_escaping_writers()
    {
        var o = new StringWriter();
        var e = new StringWriter();
        // A usage error echoes the argument the user gave: it too is escaped.
        Assert.Equal(CommandLine.Usage, CommandLine.Run(["no\u001b[2Jcommand"], o, e));
        Assert.DoesNotContain('\u001b', e.ToString());
        Assert.Contains("no\\x1b[2Jcommand", e.ToString());
    }
}
