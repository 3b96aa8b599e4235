using System.Text.Json;
using KvmTyped.Cli;
using KvmTyped.TestSupport;

namespace KvmTyped.EndToEnd.Tests.Cli;

/// <summary>Integers in every command's JSON are JSON numbers only while a double holds them exactly (|n| ≤ 2^53), and
/// "0x…" strings above, as addresses are.</summary>
public class JsonNumberTests
{
    private static readonly string Folder = Path.Combine(Fixtures.RepoRoot, "samples", "linux-amd64");
    private static readonly string[] Files = ["-n", Path.Combine(Folder, "System.map-6.1.0-56-amd64"), "-c", Path.Combine(Folder, "vmcore.kdump")];
    private const double MaxExact = 9007199254740992; // 2^53

    private static JsonElement RunJson(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.True(CommandLine.Run([.. args, "--json"], o, e) == 0, e.ToString());
        using var doc = JsonDocument.Parse(o.ToString());
        return doc.RootElement.Clone();
    }

    private static void AssertExactNumbers(JsonElement e, string path, List<string> bad)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var p in e.EnumerateObject())
                    AssertExactNumbers(p.Value, path + "." + p.Name, bad);
                break;
            case JsonValueKind.Array:
                var i = 0;
                foreach (var x in e.EnumerateArray())
                    AssertExactNumbers(x, $"{path}[{i++}]", bad);
                break;
            case JsonValueKind.Number:
                if (Math.Abs(e.GetDouble()) > MaxExact)
                    bad.Add($"{path} = {e.GetRawText()}");
                break;
        }
    }

    public static TheoryData<string[]> Commands() => new()
    {
        new[] { "info" }, new[] { "ps" }, new[] { "log" }, new[] { "uname" }, new[] { "bt", "--all" }, new[] { "mod", "-S" },
        new[] { "nlist", "init_task" }, new[] { "rd", "init_task" }, new[] { "struct", "task_struct", "init_task" },
    };

    [Theory]
    [MemberData(nameof(Commands))]
    public void No_json_number_of_a_command_on_the_sample_exceeds_2_to_the_53(string[] command)
    {
        var bad = new List<string>();
        AssertExactNumbers(RunJson([.. command, .. Files]), "$", bad);
        Assert.Empty(bad);
    }

    [Fact]
    public void A_struct_member_above_2_to_the_53_is_a_hex_string()
    {
        // init_task's stack canary is a random 64-bit word: its value is read back as a string, digit for digit.
        var task = RunJson(["struct", "task_struct", "init_task", .. Files]).GetProperty("value");
        var canary = task.GetProperty("stack_canary");
        Assert.Equal(JsonValueKind.String, canary.ValueKind);
        Assert.StartsWith("0x", canary.GetString());
        Assert.True(ulong.Parse(canary.GetString()![2..], System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture) > 1UL << 53);
        var (pid, state) = (task.GetProperty("pid"), task.GetProperty("__state"));
        Assert.Equal(JsonValueKind.Number, pid.ValueKind);
        Assert.Equal(JsonValueKind.Number, state.ValueKind);
    }

    [Fact]
    public void Btf_dump_and_schema_layout_keep_to_the_rule()
    {
        var bad = new List<string>();
        AssertExactNumbers(RunJson("btf", "dump", Fixtures.Get("i386/vmlinux-6.1.0-50-686-pae.btf"), "task_struct", "page"), "$", bad);
        AssertExactNumbers(RunJson("schema", "layout", Path.Combine(Fixtures.RepoRoot, "schemas", "linux", "list.h")), "$", bad);
        Assert.Empty(bad);
    }

    [Theory]
    [InlineData(9007199254740992UL, "9007199254740992")]
    [InlineData(9007199254740993UL, "\"0x20000000000001\"")]
    [InlineData(ulong.MaxValue, "\"0xffffffffffffffff\"")]
    public void The_boundary_is_2_to_the_53(ulong value, string json)
    {
        Assert.Equal("{\"n\":" + json + "}", Write(w => Output.Number(w, "n", value)));
    }

    [Theory]
    [InlineData(-9007199254740992L, "-9007199254740992")]
    [InlineData(-9007199254740993L, "\"-0x20000000000001\"")]
    [InlineData(long.MinValue, "\"-0x8000000000000000\"")]
    public void Negative_numbers_below_minus_2_to_the_53_are_strings(long value, string json)
    {
        Assert.Equal("{\"n\":" + json + "}", Write(w => Output.Number(w, "n", value)));
        Assert.Equal("{\"n\":" + json + "}", Write(w => KvmTyped.Btf.JsonNumber.Write(w, "n", value)));
    }

    private static string Write(Action<Utf8JsonWriter> body)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }
}
