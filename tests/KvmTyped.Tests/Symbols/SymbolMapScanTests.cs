using KvmTyped.IO;
using KvmTyped.Symbols;
using KvmTyped.TestSupport;
using KvmTyped.Tests.TestSupport;

namespace KvmTyped.Tests.Symbols;

/// <summary>A System.map answers name lookups from the line that holds the name (a table of names filled while its
/// lines are checked), without building its index; the answers must be the index's.</summary>
public class SymbolMapScanTests
{
    private static TextSymbolTable Map(TempDir d, string name, string text) =>
        TextSymbolTable.OpenMap(RandomAccessFile.Open(d.Text(name, text), writable: false));

    /// <summary>A table whose lines are checked in two parts at once, however small its text.</summary>
    private static TextSymbolTable SplitMap(TempDir d, string name, string text) =>
        TextSymbolTable.OpenMap(RandomAccessFile.Open(d.Text(name, text), writable: false), splitBytes: 1);

    /// <summary>The same lookups on tables over one text, answering from its lines (in one pass, and in two parts)
    /// and from every symbol decoded into a <see cref="SymbolIndex"/>: the count the first give from their check of
    /// the lines is the index's. Address lookups, at every symbol's address, one byte either side and between, are the
    /// index's too.</summary>
    private static void SameAsIndex(string text, IEnumerable<string> names)
    {
        using var d = new TempDir();
        using var scanning = Map(d, "scanning", text);
        using var split = SplitMap(d, "split", text);
        using var indexed = Map(d, "indexed", text);
        var index = indexed.FullIndex;
        Assert.True(index.Count > 0);
        Assert.Equal(index.Count, scanning.Count);
        Assert.Equal(index.Count, split.Count);
        foreach (var name in names)
        {
            var found = index.TryLookup(name, out var expected);
            Assert.Equal((found, expected), (scanning.TryLookup(name, out var got), got));
            Assert.Equal((found, expected), (split.TryLookup(name, out got), got));
        }
        SameAddressAnswers(index, scanning, text);
    }

    /// <summary>Address lookups of <paramref name="table"/> against <paramref name="index"/>'s.</summary>
    private static void SameAddressAnswers(SymbolIndex index, TextSymbolTable table, string text)
    {
        var addresses = text.Split('\n').Select(l => l.Split(' ')[0]).Where(a => a.Length is > 0 and <= 16 && a.All(char.IsAsciiHexDigit))
            .Select(a => Convert.ToUInt64(a, 16)).Distinct().ToList();
        var probes = addresses.SelectMany(a => new[] { a - 1, a, a + 1, a + 0x37 }).Concat(new ulong[] { 0, ulong.MaxValue });
        foreach (var a in probes)
        {
            var found = index.TryFindNearest(a, out var expected);
            Assert.Equal((found, expected), (table.TryFindNearest(a, out var got), got));
            found = index.TryFindNext(a, out expected);
            Assert.Equal((found, expected), (table.TryFindNext(a, out got), got));
        }
    }

    [Fact]
    public void Duplicates_separators_and_partial_words_give_the_index_answer()
    {
        const string text =
            "ffffffff81000000 T _text\n" +
            "ffffffff81000010 t dup_local_first\n" +   // local, then global: the global one
            "ffffffff81000020 T dup_local_first\n" +
            "ffffffff81000030 T dup_global_first\n" +  // global, then local: the global one
            "ffffffff81000040 t dup_global_first\n" +
            "ffffffff81000050 t only_local\n" +        // two locals: the first
            "ffffffff81000060 t only_local\n" +
            "ffffffff81000070 D crlf_name\r\n" +
            "ffffffff81000080 d tabbed\t[mod]\n" +
            "ffffffff81000090 T several words target\n" + // "target" is no name field here
            "ffffffff810000a0 T target_longer\n" +
            "ffffffff810000b0 T xtarget\n" +
            "ffffffff810000c0 B target\n" +
            "ffffffff810000d0 T last_no_newline";
        SameAsIndex(text, ["_text", "dup_local_first", "dup_global_first", "only_local", "crlf_name", "crlf_name\r", "tabbed",
            "tabbed\t[mod]", "several", "words", "target", "target_longer", "xtarget", "last_no_newline", "absent", "T", "ffffffff81000000"]);
        using var d = new TempDir();
        using var t = Map(d, "map", text);
        Assert.True(t.TryLookup("target", out var s));
        Assert.Equal(new KernelSymbol("target", 0xffffffff810000c0, 'B'), s);
        Assert.True(t.TryLookup("dup_local_first", out s));
        Assert.Equal(0xffffffff81000020UL, s.Address);
    }

    [Fact]
    public void A_damaged_line_anywhere_is_refused_at_the_first_lookup_as_the_index_refuses_it()
    {
        using var d = new TempDir();
        foreach (var (bad, message) in new[]
        {
            ("fffffffg81000020 T broken\n", "line 3: not \"ADDRESS TYPE NAME\""),
            ("ffffffff81000020 T \n", "line 3: not \"ADDRESS TYPE NAME\""),
            ("ffffffff81000020 T \r\n", "line 3: empty symbol name"),
            ("ffffffff81000020 T " + new string('n', TextSymbolTable.MaxNameLength + 1) + "\n", $"line 3: a symbol name of {TextSymbolTable.MaxNameLength + 1} bytes"),
        })
        {
            var text = "ffffffff81000000 T _text\nffffffff81000010 T fine\n" + bad + "ffffffff81000030 T after\n";
            using var scanning = Map(d, "scanning", text);
            Assert.Contains(message, Assert.Throws<KvmFormatException>(() => scanning.TryLookup("fine", out _)).Message, StringComparison.Ordinal);
            using var split = SplitMap(d, "split", text);
            Assert.Contains(message, Assert.Throws<KvmFormatException>(() => split.TryLookup("fine", out _)).Message, StringComparison.Ordinal);
            using var indexed = Map(d, "indexed", text);
            Assert.Contains(message, Assert.Throws<KvmFormatException>(() => indexed.FullIndex).Message, StringComparison.Ordinal);
            using var byAddress = Map(d, "byAddress", text);
            Assert.Contains(message, Assert.Throws<KvmFormatException>(() => byAddress.TryFindNearest(0xffffffff81000010, out _)).Message, StringComparison.Ordinal);
        }
    }

    /// <summary>4,000 good lines with a damaged one at each given line number (from 1).</summary>
    private static string Damaged(params int[] bad) => string.Concat(Enumerable.Range(1, 4_000).Select(n =>
        bad.Contains(n) ? $"{0xffffffff81000000 + (ulong)n * 16:x16}  no_type\n" : $"{0xffffffff81000000 + (ulong)n * 16:x16} T sym_{n}\n"));

    [Theory]
    [InlineData(new[] { 3_500 }, 3_500)]            // in the later part only: numbered from the text's start
    [InlineData(new[] { 2_001, 2_002 }, 2_001)]     // the later part's first line
    [InlineData(new[] { 1_999, 3_000 }, 1_999)]     // in both parts: the first
    [InlineData(new[] { 2, 4_000 }, 2)]
    public void Lines_checked_in_two_parts_refuse_the_first_damaged_line_by_its_number_in_the_whole_text(int[] bad, int first)
    {
        using var d = new TempDir();
        var path = d.Text("map", Damaged(bad));
        using var indexed = TextSymbolTable.OpenMap(RandomAccessFile.Open(path, writable: false));
        var expected = Assert.Throws<KvmFormatException>(() => indexed.FullIndex).Message;
        Assert.Contains($"line {first}: ", expected, StringComparison.Ordinal);
        using var split = TextSymbolTable.OpenMap(RandomAccessFile.Open(path, writable: false), splitBytes: 1);
        Assert.Equal(expected, Assert.Throws<KvmFormatException>(() => split.TryLookup("sym_2", out _)).Message);
        // The failure is kept: a second lookup is refused the same way.
        Assert.Equal(expected, Assert.Throws<KvmFormatException>(() => split.TryLookup("sym_3", out _)).Message);
    }

    [Fact]
    public void A_global_line_in_the_later_part_is_preferred_to_a_local_one_before_it()
    {
        var lines = Enumerable.Range(0, 4_000).Select(i => $"{0xffffffff81000000 + (ulong)i * 16:x16} t filler_{i}\n").ToArray();
        lines[10] = "ffffffff81000100 t dup\n";
        lines[3_900] = "ffffffff8100f000 T dup\n";
        lines[20] = "ffffffff81000200 t local_twice\n";
        lines[3_800] = "ffffffff8100e000 t local_twice\n";
        using var d = new TempDir();
        using var split = SplitMap(d, "split", string.Concat(lines));
        Assert.True(split.TryLookup("dup", out var s));
        Assert.Equal(new KernelSymbol("dup", 0xffffffff8100f000, 'T'), s);
        Assert.True(split.TryLookup("local_twice", out s));
        Assert.Equal(0xffffffff81000200UL, s.Address);
        Assert.True(split.TryLookup("filler_3999", out s));
        Assert.Equal(4_000, split.Count);
    }

    [Fact]
    public void A_table_closed_while_its_later_part_is_being_checked_stops_that_check_first()
    {
        // 2 MB of lines: the later part's thread is still reading the mapped file when the table is closed, which
        // unmaps it; closing waits for the thread, so nothing reads unmapped memory (which would end the process).
        using var d = new TempDir();
        var path = d.Text("big", string.Concat(Enumerable.Range(0, 60_000).Select(i => $"{0xffffffff81000000 + (ulong)i * 16:x16} T name_{i}\n")));
        for (var round = 0; round < 30; round++)
        {
            var t = TextSymbolTable.OpenMap(RandomAccessFile.Open(path, writable: false), splitBytes: 1);
            t.Dispose();
        }
        using var kept = TextSymbolTable.OpenMap(RandomAccessFile.Open(path, writable: false), splitBytes: 1);
        Assert.True(kept.TryLookup("name_59999", out var s));
        Assert.Equal(0xffffffff81000000 + 59_999UL * 16, s.Address);
    }

    [Fact]
    public void Symbols_that_share_an_address_are_ordered_by_address_as_the_index_orders_them()
    {
        // At one address: weak after strong, linker-script names (__start_*, __stop_*, __end_*, __*_start, __*_end)
        // after others, more leading underscores after fewer, then text order; absolute symbols end nothing.
        var text = string.Concat(
            "ffffffff81000000 T _text\n",
            "ffffffff81001000 W weak_first\n", "ffffffff81001000 T __start_section\n", "ffffffff81001000 T ___three\n",
            "ffffffff81001000 T _one\n", "ffffffff81001000 t plain\n", "ffffffff81001000 T __data_end\n",
            "ffffffff81002000 w only_weak\n", "ffffffff81002000 w also_weak\n",
            "ffffffff81003000 A absolute\n", "ffffffff81003000 a absolute_too\n", "ffffffff81003800 T after_absolute\n",
            "ffffffff81004000 T caf\u00e9_end\n", "ffffffff81004000 T __\u00e9\u00e9_end\n", "ffffffff81004000 T __abc_end\n",
            "ffffffff81000800 T out_of_order\n");
        SameAsIndex(text, ["plain", "_one", "only_weak"]);
        using var d = new TempDir();
        using var t = Map(d, "map", text);
        Assert.True(t.TryFindNearest(0xffffffff81001010, out var s));
        Assert.Equal(new KernelSymbol("plain", 0xffffffff81001000, 't'), s);
        Assert.True(t.TryFindNext(0xffffffff81002000, out s));
        Assert.Equal("after_absolute", s.Name);
        Assert.True(t.TryFindNearest(0xffffffff81000900, out s));
        Assert.Equal("out_of_order", s.Name);
        Assert.False(t.TryFindNearest(0xffffffff80000000, out _));
    }

    [Fact]
    public void Many_names_and_duplicates_past_the_first_table_size_agree_with_the_index()
    {
        // 100,000 lines in 2.9 MB: the table starts for one line in 16 bytes and grows once it is 70% full.
        var text = string.Concat(Enumerable.Range(0, 100_000).Select(i => $"{0xffffffff81000000 + (ulong)i * 16:x16} {(i % 3 == 0 ? 't' : 'T')} sym_{i % 70_000}\n"));
        SameAsIndex(text, Enumerable.Range(0, 2_000).Select(i => $"sym_{i * 37 % 75_000}"));
    }

    [Fact]
    public void Empty_lines_carriage_returns_and_module_suffixes_between_kept_offsets_agree_with_the_index()
    {
        // Every line is found by walking from the offset kept for every 32nd line: empty lines (which are counted
        // but hold no symbol), CRLF ends and "\t[module]" suffixes must not shift that walk.
        var text = string.Concat(Enumerable.Range(0, 3_000).Select(i =>
            (i % 7 == 1 ? "\n" : "") + (i % 11 == 1 ? "\n\n" : "") +
            $"{0xffffffff81000000 + (ulong)i * 16:x16} {(i % 5 == 0 ? 'd' : 'D')} name_{i % 2_500}" +
            (i % 13 == 0 ? "\t[mod]" : "") + (i % 3 == 0 ? "\r\n" : "\n")));
        SameAsIndex(text, Enumerable.Range(0, 2_600).Select(i => $"name_{i}"));
    }

    [Fact]
    public void Names_that_share_their_tag_are_told_apart_by_comparing_them()
    {
        // A name's tag is made from its length and its first and last eight bytes: these 5,000 names share all three,
        // so every lookup compares every line, walking each from the nearest kept offset or the line before.
        var text = string.Concat(Enumerable.Range(0, 5_000).Select(i =>
            $"{0xffffffff81000000 + (ulong)i * 16:x16} {(i % 4 == 0 ? 't' : 'T')} prefix__{i % 4_000:d4}__suffix\n" + (i % 9 == 1 ? "\n" : "")));
        SameAsIndex(text, Enumerable.Range(0, 300).Select(i => $"prefix__{i * 13 % 4_100:d4}__suffix"));
    }

    [Fact]
    public void Non_ascii_and_separator_names_are_answered_by_the_index()
    {
        const string text = "ffffffff81000000 T _text\nffffffff81000010 T caf\u00e9\nffffffff81000020 t a\u00a0b\n";
        SameAsIndex(text, ["caf\u00e9", "a\u00a0b", "a", "_text", "", "a b"]);
    }

    [Fact]
    public void The_fixture_map_answers_as_its_index_does()
    {
        var path = Fixtures.Get("amd64/System.map-6.1.0-56-amd64");
        var lines = File.ReadAllLines(path);
        var rnd = new Random(14);
        // Names a command asks for, names defined twice (local and global), and random ones.
        var names = new List<string> { "init_task", "runqueues", "__per_cpu_offset", "_stext", "_text", "linux_banner", "nr_cpu_ids", "modules", "__cpu_possible_mask", "no_such_symbol" };
        var counts = lines.Select(l => l.Split(' ')[2]).GroupBy(n => n).Where(g => g.Count() > 1).Select(g => g.Key).Take(20);
        names.AddRange(counts);
        names.AddRange(Enumerable.Range(0, 500).Select(_ => lines[rnd.Next(lines.Length)].Split(' ')[2]));
        SameAsIndex(File.ReadAllText(path), names);
    }
}
