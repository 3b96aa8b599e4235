using System.Collections.Concurrent;
using System.Globalization;
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

    /// <summary>The most name lookups a System.map answers by scanning its text before it indexes every line: a
    /// command asks for a few dozen names (ps about ten), which a scan answers in far less time and memory than
    /// parsing 130,000 lines into an index; a caller asking for many names gets the index.</summary>
    public const int MaxScannedLookups = 64;

    private readonly Lazy<SymbolIndex> _index;
    private readonly byte[]? _text;
    private readonly RandomAccessFile? _file;
    private readonly ConcurrentDictionary<string, KernelSymbol?>? _scanned;
    private readonly Lazy<int> _checked;
    private int _scans;

    private static readonly System.Buffers.SearchValues<byte> HexDigits = System.Buffers.SearchValues.Create("0123456789abcdefABCDEF"u8);

    private TextSymbolTable(string source, string kind, RandomAccessFile? file, byte[]? text, DataModel? model)
    {
        Source = source;
        Kind = kind;
        _file = file;
        _text = text;
        DataModel = model;
        _index = new Lazy<SymbolIndex>(Build, LazyThreadSafetyMode.ExecutionAndPublication);
        // kallsyms text is the kernel's own and is indexed whole (its lines are checked at first use); a System.map
        // answers its first name lookups from the lines that hold the name.
        if (kind == "System.map")
            _scanned = new ConcurrentDictionary<string, KernelSymbol?>(StringComparer.Ordinal);
        _checked = new Lazy<int>(CheckLines, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>Checks every line as <see cref="Build"/> does, with the same messages, without building anything: a
    /// damaged namelist is refused at its first use whichever way its names are looked up.</summary>
    /// <returns>How many symbols the lines hold (one a line, as <see cref="Build"/> indexes them).</returns>
    private int CheckLines()
    {
        var lines = new Lines(Text);
        int count = 0;
        while (lines.Next(out var line))
        {
            _ = SplitLine(line, lines.Number, out _, out _);
            count++;
        }
        return count;
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
    public int Count => _scanned is null || _index.IsValueCreated ? _index.Value.Count : _checked.Value;

    /// <summary>Opens a System.map file; symbols are parsed on first use.</summary>
    internal static TextSymbolTable OpenMap(RandomAccessFile file)
    {
        if (file.Length > MaxTextBytes)
            throw new KvmFormatException(file.Path, null, $"{file.Length} bytes: larger than any namelist ({MaxTextBytes >> 20} MiB)");
        var head = file.Unchecked(0, (int)Math.Min(file.Length, 4096));
        var width = FirstLineWidth(head, out var reason);
        if (width <= 0)
            throw new KvmFormatException(file.Path, 0, $"not a namelist: {reason}");
        return new TextSymbolTable(file.Path, "System.map", file, null, width > 8 ? KvmTyped.DataModel.LP64 : KvmTyped.DataModel.ILP32);
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

    /// <summary>The non-empty lines of a text, with their 1-based line numbers (empty lines counted).</summary>
    private ref struct Lines(ReadOnlySpan<byte> text)
    {
        private ReadOnlySpan<byte> _rest = text;

        /// <summary>The number of the line <see cref="Next"/> gave last.</summary>
        public int Number { get; private set; }

        /// <summary>The next non-empty line (without its newline), or false at the end.</summary>
        public bool Next(out ReadOnlySpan<byte> line)
        {
            while (!_rest.IsEmpty)
            {
                Number++;
                var nl = _rest.IndexOf((byte)'\n');
                line = nl >= 0 ? _rest[..nl] : _rest;
                _rest = nl >= 0 ? _rest[(nl + 1)..] : default;
                if (!line.IsEmpty)
                    return true;
            }
            line = default;
            return false;
        }
    }

    /// <summary>One line's fields, checked: an address of 1 to 16 hex digits, a one-letter type, a name of 1 to
    /// <see cref="MaxNameLength"/> bytes (a module or a carriage return after it is dropped).</summary>
    /// <exception cref="KvmFormatException">The line is not "ADDRESS TYPE NAME".</exception>
    private ReadOnlySpan<byte> SplitLine(ReadOnlySpan<byte> line, int lineNo, out ReadOnlySpan<byte> address, out char type)
    {
        var sp = line.IndexOf((byte)' ');
        if (sp <= 0 || sp > 16 || line.Length < sp + 4 || line[sp + 2] != (byte)' ' || line[..sp].ContainsAnyExcept(HexDigits))
            throw new KvmFormatException(Source, null, $"line {lineNo}: not \"ADDRESS TYPE NAME\"");
        address = line[..sp];
        type = (char)line[sp + 1];
        var rest = line[(sp + 3)..];
        var tab = rest.IndexOfAny((byte)'\t', (byte)' ');
        var name = tab >= 0 ? rest[..tab] : rest;
        if (name.Length > 0 && name[^1] == (byte)'\r')
            name = name[..^1];
        if (name.IsEmpty)
            throw new KvmFormatException(Source, null, $"line {lineNo}: empty symbol name");
        if (name.Length > MaxNameLength)
            throw new KvmFormatException(Source, null, $"line {lineNo}: a symbol name of {name.Length} bytes, longer than {MaxNameLength}");
        return name;
    }

    private SymbolIndex Build()
    {
        var text = Text;
        var list = new List<KernelSymbol>(text.Length / 36);
        var lines = new Lines(text);
        while (lines.Next(out var line))
        {
            var name = SplitLine(line, lines.Number, out var address, out var type);
            var addr = ulong.Parse(address, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
            list.Add(new KernelSymbol(Encoding.UTF8.GetString(name), addr, type));
        }
        return new SymbolIndex(list, i => char.IsAsciiLetterUpper(list[i].Type), kallsymsOrder: Kind == "kallsyms");
    }

    /// <inheritdoc />
    public bool TryLookup(string name, out KernelSymbol symbol)
    {
        if (_scanned is null || _index.IsValueCreated || !IsScannable(name))
            return _index.Value.TryLookup(name, out symbol);
        if (!_scanned.TryGetValue(name, out var found))
        {
            if (Interlocked.Increment(ref _scans) > MaxScannedLookups)
                return _index.Value.TryLookup(name, out symbol);
            _ = _checked.Value; // every line is checked once, as the index checks them, before the first answer
            found = Scan(name);
            _scanned[name] = found;
        }
        symbol = found.GetValueOrDefault();
        return found.HasValue;
    }

    /// <summary>A name the scan finds exactly as the index would: printable ASCII without the separators that end a
    /// name field (the index decodes names as UTF-8; ASCII bytes compare the same either way).</summary>
    private static bool IsScannable(string name)
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

    /// <summary>The symbol <see cref="Build"/> would index under <paramref name="name"/>, found from the lines whose
    /// name field is <paramref name="name"/>: the first such line, or the first global one after it when the first is
    /// local. Called once every line has been checked (<see cref="CheckLines"/>).</summary>
    private KernelSymbol? Scan(string name)
    {
        var text = Text;
        Span<byte> needle = name.Length <= 256 ? stackalloc byte[name.Length] : new byte[name.Length];
        Encoding.ASCII.GetBytes(name, needle);
        KernelSymbol? first = null; // the first line with the name, while it is a local one
        var from = 0;
        while (from < text.Length)
        {
            var hit = text[from..].IndexOf(needle);
            if (hit < 0)
                break;
            var at = from + hit;
            from = at + 1;
            // The name field starts after "ADDRESS T " and ends at a tab, a space, a line end or the end of the text
            // (a \r before those is dropped, as Build drops it).
            if (at < 3 || text[at - 1] != (byte)' ' || text[at - 3] != (byte)' ')
                continue;
            var end = at + needle.Length;
            if (end < text.Length && text[end] == (byte)'\r')
                end++;
            if (end < text.Length && text[end] is not ((byte)'\n' or (byte)'\t' or (byte)' '))
                continue;
            var lineStart = text[..(at - 3)].LastIndexOf((byte)'\n') + 1;
            var address = text[lineStart..(at - 3)];
            if (address.Contains((byte)' '))
                continue; // the name is a later word of another line's name field
            // The line's first field, checked with every line before the first scan (CheckLines): 1 to 16 hex digits.
            var addr = ulong.Parse(address, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
            var symbol = new KernelSymbol(name, addr, (char)text[at - 2]);
            if (char.IsAsciiLetterUpper(symbol.Type))
                return symbol; // the first global line: the index keeps it whether or not a local one came before
            first ??= symbol;
        }
        return first;
    }

    /// <inheritdoc />
    public bool TryFindNearest(ulong address, out KernelSymbol symbol) => _index.Value.TryFindNearest(address, out symbol);

    /// <inheritdoc />
    public bool TryFindNext(ulong address, out KernelSymbol symbol) => _index.Value.TryFindNext(address, out symbol);

    /// <inheritdoc />
    public void Dispose() => _file?.Dispose();
}
