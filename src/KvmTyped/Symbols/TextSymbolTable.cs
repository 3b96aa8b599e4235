using System.Globalization;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Text;
using KvmTyped.IO;

namespace KvmTyped.Symbols;

/// <summary>A namelist in nm's text form: System.map, or /proc/kallsyms (which may add "\t[module]").
/// Lines are "ADDRESS TYPE NAME"; the address width (8 or 16 hex digits) gives the data model.</summary>
internal sealed class TextSymbolTable : ISymbolTable
{
    /// <summary>The largest symbol text read: a System.map or a kallsyms with every module (a Debian amd64 kernel's
    /// System.map is 4 MiB; /proc/kallsyms with modules loaded, about 10 MiB).</summary>
    public const long MaxTextBytes = 256L << 20;

    /// <summary>The longest symbol name accepted (KSYM_NAME_LEN is 512 since Linux 6.1).</summary>
    public const int MaxNameLength = 4096;

    private readonly Lazy<SymbolIndex> _index;
    private readonly Lazy<LineAddressIndex>? _addresses;
    private readonly byte[]? _text;
    private readonly RandomAccessFile? _file;
    private readonly bool _byLine;
    private readonly Lazy<CheckedLines> _checked;
    private readonly LaterLines? _later;

    /// <summary>The size from which a System.map's lines are checked in two parts at once: the later half on a thread
    /// of its own from the open on, the first at first use (a Debian map is 4 MiB, and checking it was a tenth of a
    /// `ps`).</summary>
    internal const int SplitCheckBytes = 1 << 20;

    private TextSymbolTable(string source, string kind, RandomAccessFile? file, byte[]? text, DataModel? model, int splitBytes = int.MaxValue)
    {
        Source = source;
        Kind = kind;
        _file = file;
        _text = text;
        DataModel = model;
        _index = new Lazy<SymbolIndex>(Build, LazyThreadSafetyMode.ExecutionAndPublication);
        // kallsyms text is the kernel's own and is indexed whole (its lines are checked at first use); a System.map
        // answers name lookups from the line that holds the name, found through a table of names filled while every
        // line is checked: a command asks for a few dozen names, and parsing 94,000 lines into symbols costs far more
        // time and memory than that. Its address lookups go through the lines' addresses, sorted (LineAddressIndex).
        _byLine = kind == "System.map";
        if (_byLine)
            _addresses = new Lazy<LineAddressIndex>(BuildAddresses, LazyThreadSafetyMode.ExecutionAndPublication);
        _checked = new Lazy<CheckedLines>(CheckLines, LazyThreadSafetyMode.ExecutionAndPublication);
        if (_byLine && Text.Length >= splitBytes && Environment.ProcessorCount > 1 && LaterLines.Boundary(Text) is > 0 and var boundary)
            _later = LaterLines.Start(this, boundary);
    }

    /// <summary>What checking every line found: how many symbols the lines hold (one a line, as <see cref="Build"/>
    /// indexes them), and, for a System.map, where each name's line is.</summary>
    private sealed record CheckedLines(int Count, LineNameTable? Names);

    /// <summary>Checks every line as <see cref="Build"/> does, with the same messages, without building anything: a
    /// damaged namelist is refused at its first use whichever way its names are looked up. A System.map's names go
    /// into a <see cref="LineNameTable"/> on the way.</summary>
    private CheckedLines CheckLines()
    {
        var text = Text;
        var end = _later?.From ?? text.Length;
        var names = _byLine ? new LineNameTable(end) : null;
        int count = 0;
        try
        {
            var lines = new LineReader(text[..end], Source);
            while (lines.Next(out _, out _, out var name))
            {
                names?.Add(lines.Start, name);
                count++;
            }
        }
        catch
        {
            // A damaged line in this part is the first: the later part's result is not needed (and its thread reads the
            // text no more once this throws).
            _later?.Cancel();
            throw;
        }
        if (_later is { } later)
        {
            later.Wait();
            var (laterNames, laterCount) = later.Result();
            names!.Append(laterNames);
            count += laterCount;
        }
        return new CheckedLines(count, names);
    }

    /// <summary>The later half of a System.map's lines, checked on a thread of its own into a table of their names.</summary>
    private sealed class LaterLines
    {
        private readonly TextSymbolTable _owner;
        private readonly Thread _thread;
        private volatile bool _cancelled;
        private LineNameTable? _names;
        private int _count;
        private System.Runtime.ExceptionServices.ExceptionDispatchInfo? _failure;

        private LaterLines(TextSymbolTable owner, int from)
        {
            _owner = owner;
            From = from;
            _thread = new Thread(Run, 256 << 10) { IsBackground = true, Name = "kvmtyped: System.map check" };
        }

        /// <summary>Where the later part starts: the first line start from the middle of the text on, or 0 when there is
        /// none. Every line ends at the first line feed after its start, so the two parts hold the lines one pass
        /// would read, each whole.</summary>
        public static int Boundary(ReadOnlySpan<byte> text)
        {
            var nl = text[(text.Length / 2)..].IndexOf((byte)'\n');
            var from = nl < 0 ? 0 : text.Length / 2 + nl + 1;
            return from < text.Length ? from : 0;
        }

        public static LaterLines Start(TextSymbolTable owner, int from)
        {
            var later = new LaterLines(owner, from);
            later._thread.Start();
            return later;
        }

        /// <summary>Where the later part starts in the text.</summary>
        public int From { get; }

        private void Run()
        {
            try
            {
                var text = _owner.Text;
                // Line numbers in messages count from the text's start: the lines before this part each end in a line feed.
                var lines = new LineReader(text[From..], _owner.Source, From, text[..From].Count((byte)'\n'));
                var names = new LineNameTable(text.Length - From);
                int count = 0;
                while (lines.Next(out _, out _, out var name))
                {
                    if ((count & 1023) == 0 && _cancelled)
                        return;
                    names.Add(lines.Start, name);
                    count++;
                }
                (_names, _count) = (names, count);
            }
            catch (Exception e)
            {
                _failure = System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e);
            }
        }

        /// <summary>Waits until the thread no longer reads the text.</summary>
        public void Wait() => _thread.Join();

        /// <summary>Stops the check early (the table is closed, or the first part has a damaged line) and waits for it.</summary>
        public void Cancel()
        {
            _cancelled = true;
            _thread.Join();
        }

        /// <summary>The later part's names and line count, once <see cref="Wait"/> returned; its first damaged line's
        /// error is thrown.</summary>
        public (LineNameTable Names, int Count) Result()
        {
            _failure?.Throw();
            return (_names!, _count);
        }
    }

    /// <inheritdoc />
    public string Source { get; }

    /// <inheritdoc />
    public string Kind { get; }

    /// <inheritdoc />
    public DataModel? DataModel { get; }

    /// <inheritdoc />
    public KernelMachine Machine => KernelMachine.Unknown;

    /// <inheritdoc />
    public int Count => _byLine ? _checked.Value.Count : _index.Value.Count;

    /// <summary>Opens a System.map file; symbols are parsed on first use.</summary>
    /// <param name="file">The System.map.</param>
    /// <param name="splitBytes">The size from which its lines are checked in two parts at once
    /// (<see cref="SplitCheckBytes"/>; less in tests).</param>
    internal static TextSymbolTable OpenMap(RandomAccessFile file, int splitBytes = SplitCheckBytes)
    {
        if (file.Length > MaxTextBytes)
            throw new KvmFormatException(file.Path, null, $"{file.Length} bytes: larger than any namelist ({MaxTextBytes >> 20} MiB)");
        var head = file.Unchecked(0, (int)Math.Min(file.Length, 4096));
        var width = FirstLineWidth(head, out var reason);
        if (width <= 0)
            throw new KvmFormatException(file.Path, 0, $"not a namelist: {reason}");
        return new TextSymbolTable(file.Path, "System.map", file, null, width > 8 ? KvmTyped.DataModel.LP64 : KvmTyped.DataModel.ILP32, splitBytes);
    }

    /// <summary>Largest kallsyms text read, the cap of every symbol text (a kernel with every module loaded shows a few tens of MiB).</summary>
    internal const int MaxKallsymsBytes = (int)MaxTextBytes;

    /// <summary>Bytes asked for per read of a kallsyms file. /proc/kallsyms (a seq_file) gives at most a page per read
    /// however much is asked, so it takes about one read per 4 KiB of text (the running kernel's open avoids reading it,
    /// see <see cref="LiveKallsymsTable"/>); a saved copy on disk takes one read per MiB.</summary>
    internal const int KallsymsReadSize = 1 << 20;

    /// <summary>Reads a kallsyms file once, in large reads into a growing buffer: procfs files report no length (their
    /// size is 0), so the text is read until end of file, never by length and never in small pieces.</summary>
    internal static TextSymbolTable OpenKallsyms(string path)
    {
        HostPlatform.RequireLinuxFile(path, "the running kernel's symbol table");
        byte[] text;
        try
        {
            using var stream = new FileStream(path, new FileStreamOptions { Mode = FileMode.Open, Access = FileAccess.Read, Share = FileShare.ReadWrite, BufferSize = 0 });
            text = ReadToEnd(stream, path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var why = e is FileNotFoundException or DirectoryNotFoundException ? "No such file or directory" : e is UnauthorizedAccessException ? "Permission denied" : e.Message;
            throw new KvmOpenException($"{path}: {why}", e);
        }
        var width = FirstLineWidth(text, out var reason);
        if (width <= 0)
            throw new KvmFormatException(path, 0, $"not a kallsyms file: {reason}");
        return new TextSymbolTable(path, "kallsyms", null, text, width > 8 ? KvmTyped.DataModel.LP64 : KvmTyped.DataModel.ILP32);
    }

    /// <summary>Reads a stream to its end in reads of <see cref="KallsymsReadSize"/> bytes, refusing more than
    /// <paramref name="max"/> bytes.</summary>
    internal static byte[] ReadToEnd(Stream stream, string path, int max = MaxKallsymsBytes)
    {
        var buffer = new byte[KallsymsReadSize];
        var length = 0;
        while (true)
        {
            if (buffer.Length - length < KallsymsReadSize)
                Array.Resize(ref buffer, (int)Math.Min((long)buffer.Length * 2, (long)max + KallsymsReadSize));
            var n = stream.Read(buffer, length, KallsymsReadSize);
            if (n <= 0)
                break;
            length += n;
            if (length > max)
                throw new KvmFormatException(path, max, $"more than {max} bytes: larger than any kallsyms");
        }
        return buffer.AsSpan(0, length).ToArray();
    }

    private static int FirstLineWidth(ReadOnlySpan<byte> head, out string reason)
    {
        var nl = head.IndexOf((byte)'\n');
        var line = nl >= 0 ? head[..nl] : head;
        var sp = line.IndexOf((byte)' ');
        if (sp is not (8 or 16))
        {
            reason = "the first line does not start with an 8- or 16-digit hex address";
            return 0;
        }
        foreach (var b in line[..sp])
        {
            if (!char.IsAsciiHexDigit((char)b))
            {
                reason = "the first line does not start with a hex address";
                return 0;
            }
        }
        if (line.Length < sp + 4 || line[sp + 2] != (byte)' ')
        {
            reason = "the first line is not \"ADDRESS TYPE NAME\"";
            return 0;
        }
        reason = "";
        return sp;
    }

    /// <summary>The whole text: the bytes read from a stream, or the mapped file.</summary>
    private ReadOnlySpan<byte> Text => _text ?? _file!.Unchecked(0, (int)_file.Length);

    /// <summary>The non-empty lines of a namelist text, each checked and split into its fields: an address of 1 to 16
    /// hex digits, a one-letter type, a name of 1 to <see cref="MaxNameLength"/> bytes (a module after a tab or a
    /// space, and a carriage return before the line's end, are dropped). Line numbers count empty lines too.</summary>
    /// <remarks>One pass over the text: a line's end is found with its name's, and its address is checked sixteen
    /// bytes at a time (a namelist has over a hundred thousand lines, each read once at first use).</remarks>
    /// <param name="text">The lines: a whole text, or a part of one that starts at a line's start and ends after a line feed.</param>
    /// <param name="source">What to call the text in messages.</param>
    /// <param name="offset">Where the part starts in the whole text.</param>
    /// <param name="linesBefore">How many lines the whole text has before the part.</param>
    private ref struct LineReader(ReadOnlySpan<byte> text, string source, int offset = 0, int linesBefore = 0)
    {
        private readonly ReadOnlySpan<byte> _text = text;
        private int _pos;

        /// <summary>The number of the line <see cref="Next"/> gave last, in the whole text.</summary>
        public int Number { get; private set; } = linesBefore;

        /// <summary>The offset in the whole text of the line <see cref="Next"/> gave last.</summary>
        public readonly int Start => offset + _start;

        private int _start;

        /// <summary>The next non-empty line's fields; false at the end.</summary>
        /// <exception cref="KvmFormatException">The line is not "ADDRESS TYPE NAME".</exception>
        public bool Next(out ReadOnlySpan<byte> address, out char type, out ReadOnlySpan<byte> name)
        {
            var text = _text;
            while (_pos < text.Length)
            {
                Number++;
                var start = _pos;
                if (text[start] == (byte)'\n')
                {
                    _pos++;
                    continue;
                }
                _start = start;
                var sp = HexDigits(text, start);
                var nameAt = start + sp + 3;
                if (sp is 0 or > 16 || nameAt >= text.Length || text[start + sp] != (byte)' ' || text[start + sp + 1] == (byte)'\n'
                    || text[start + sp + 2] != (byte)' ' || text[nameAt] == (byte)'\n')
                    throw new KvmFormatException(source, null, $"line {Number}: not \"ADDRESS TYPE NAME\"");
                name = LineNameTable.NameAt(text, nameAt, out var nameEnd);
                var lineEnd = nameEnd;
                if (nameEnd < text.Length && text[nameEnd] != (byte)'\n')
                {
                    var nl = text[nameEnd..].IndexOf((byte)'\n');
                    lineEnd = nl < 0 ? text.Length : nameEnd + nl;
                }
                _pos = lineEnd + 1;
                if (name.IsEmpty)
                    throw new KvmFormatException(source, null, $"line {Number}: empty symbol name");
                if (name.Length > MaxNameLength)
                    throw new KvmFormatException(source, null, $"line {Number}: a symbol name of {name.Length} bytes, longer than {MaxNameLength}");
                address = text[start..(start + sp)];
                type = (char)text[start + sp + 1];
                return true;
            }
            address = name = default;
            type = default;
            return false;
        }

        /// <summary>How many hex digits the text has from <paramref name="at"/> on, counted up to 17.</summary>
        private static int HexDigits(ReadOnlySpan<byte> text, int at)
        {
            if (at + 16 < text.Length)
            {
                var v = Vector128.LoadUnsafe(ref MemoryMarshal.GetReference(text), (nuint)at);
                var digit = Vector128.LessThan(v - Vector128.Create((byte)'0'), Vector128.Create((byte)10));
                var letter = Vector128.LessThan((v | Vector128.Create((byte)0x20)) - Vector128.Create((byte)'a'), Vector128.Create((byte)6));
                var hex = (digit | letter).ExtractMostSignificantBits();
                if (hex != 0xFFFF)
                    return BitOperations.TrailingZeroCount(~hex);
                return char.IsAsciiHexDigit((char)text[at + 16]) ? 17 : 16;
            }
            var n = 0;
            while (at + n < text.Length && n <= 16 && char.IsAsciiHexDigit((char)text[at + n]))
                n++;
            return n;
        }
    }

    /// <summary>A System.map's addresses and line starts, once every line is checked (a damaged map is refused as
    /// its first name lookup refuses it).</summary>
    private LineAddressIndex BuildAddresses()
    {
        var count = _checked.Value.Count;
        var text = Text;
        var addresses = new ulong[count];
        var lineStarts = new int[count];
        var lines = new LineReader(text, Source);
        for (var i = 0; i < count && lines.Next(out var address, out _, out _); i++)
        {
            addresses[i] = ulong.Parse(address, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
            lineStarts[i] = lines.Start;
        }
        return new LineAddressIndex(text, addresses, lineStarts);
    }

    private SymbolIndex Build()
    {
        var text = Text;
        var list = new List<KernelSymbol>(text.Length / 36);
        var lines = new LineReader(text, Source);
        while (lines.Next(out var address, out var type, out var name))
        {
            var addr = ulong.Parse(address, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
            list.Add(new KernelSymbol(Encoding.UTF8.GetString(name), addr, type));
        }
        return new SymbolIndex(list, i => char.IsAsciiLetterUpper(list[i].Type), kallsymsOrder: Kind == "kallsyms");
    }

    /// <inheritdoc />
    public bool TryLookup(string name, out KernelSymbol symbol)
    {
        if (!_byLine || !IsPlainName(name) || _checked.Value.Names is not { } names)
            return _index.Value.TryLookup(name, out symbol);
        var text = Text;
        Span<byte> bytes = name.Length <= 256 ? stackalloc byte[name.Length] : new byte[name.Length];
        Encoding.ASCII.GetBytes(name, bytes);
        var at = names.Find(text, bytes);
        if (at < 0)
        {
            symbol = default;
            return false;
        }
        // "ADDRESS T NAME": the address runs back from the type letter to the line's start (every line was checked).
        var lineStart = text[..(at - 3)].LastIndexOf((byte)'\n') + 1;
        var address = ulong.Parse(text[lineStart..(at - 3)], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
        symbol = new KernelSymbol(name, address, (char)text[at - 2]);
        return true;
    }

    /// <summary>A name the table finds exactly as the index would: printable ASCII without the separators that end a
    /// name field (the index decodes names as UTF-8; ASCII bytes compare the same either way).</summary>
    private static bool IsPlainName(string name)
    {
        if (name.Length is 0 or > MaxNameLength)
            return false;
        foreach (var c in name)
        {
            if (c is <= ' ' or > '~')
                return false;
        }
        return true;
    }

    /// <inheritdoc />
    public bool TryFindNearest(ulong address, out KernelSymbol symbol) =>
        _addresses is { } byAddress ? byAddress.Value.TryFindNearest(Text, address, out symbol) : _index.Value.TryFindNearest(address, out symbol);

    /// <inheritdoc />
    public bool TryFindNext(ulong address, out KernelSymbol symbol) =>
        _addresses is { } byAddress ? byAddress.Value.TryFindNext(Text, address, out symbol) : _index.Value.TryFindNext(address, out symbol);

    /// <summary>Every symbol decoded and indexed by name and by address: what a kallsyms text answers from, and a
    /// System.map only for names that are not plain ASCII (its other lookups read the lines themselves).</summary>
    internal SymbolIndex FullIndex => _index.Value;

    /// <inheritdoc />
    public void Dispose()
    {
        // The later part's thread reads the mapped file: it stops before the file is closed.
        _later?.Cancel();
        _file?.Dispose();
    }
}
