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

    private readonly Lazy<SymbolIndex> _index;
    private readonly byte[]? _text;
    private readonly RandomAccessFile? _file;

    private TextSymbolTable(string source, string kind, RandomAccessFile? file, byte[]? text, DataModel? model)
    {
        Source = source;
        Kind = kind;
        _file = file;
        _text = text;
        DataModel = model;
        _index = new Lazy<SymbolIndex>(Build, LazyThreadSafetyMode.ExecutionAndPublication);
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
    public int Count => _index.Value.Count;

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

    /// <summary>Reads a kallsyms file (procfs files have no length, so it is read as a stream once).</summary>
    internal static TextSymbolTable OpenKallsyms(string path)
    {
        byte[] text;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 16);
            using var ms = new MemoryStream();
            var buffer = new byte[1 << 16];
            int n;
            while ((n = stream.Read(buffer)) > 0)
            {
                if (ms.Length + n > MaxTextBytes)
                    throw new KvmFormatException(path, ms.Length, $"more than {MaxTextBytes >> 20} MiB: larger than any kallsyms");
                ms.Write(buffer, 0, n);
            }
            text = ms.ToArray();
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

    private SymbolIndex Build()
    {
        ReadOnlySpan<byte> text = _text ?? _file!.Unchecked(0, (int)_file.Length);
        var list = new List<KernelSymbol>(text.Length / 36);
        var lineNo = 0;
        while (!text.IsEmpty)
        {
            lineNo++;
            var nl = text.IndexOf((byte)'\n');
            var line = nl >= 0 ? text[..nl] : text;
            text = nl >= 0 ? text[(nl + 1)..] : default;
            if (line.IsEmpty)
                continue;
            var sp = line.IndexOf((byte)' ');
            if (sp <= 0 || sp > 16 || line.Length < sp + 4 || line[sp + 2] != (byte)' ' ||
                !ulong.TryParse(line[..sp], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var addr))
                throw new KvmFormatException(Source, null, $"line {lineNo}: not \"ADDRESS TYPE NAME\"");
            var type = (char)line[sp + 1];
            var rest = line[(sp + 3)..];
            var tab = rest.IndexOfAny((byte)'\t', (byte)' ');
            var name = tab >= 0 ? rest[..tab] : rest;
            if (name.Length > 0 && name[^1] == (byte)'\r')
                name = name[..^1];
            if (name.IsEmpty)
                throw new KvmFormatException(Source, null, $"line {lineNo}: empty symbol name");
            if (name.Length > MaxNameLength)
                throw new KvmFormatException(Source, null, $"line {lineNo}: a symbol name of {name.Length} bytes, longer than {MaxNameLength}");
            list.Add(new KernelSymbol(Encoding.UTF8.GetString(name), addr, type));
        }
        return new SymbolIndex(list, i => char.IsAsciiLetterUpper(list[i].Type));
    }

    /// <inheritdoc />
    public bool TryLookup(string name, out KernelSymbol symbol) => _index.Value.TryLookup(name, out symbol);

    /// <inheritdoc />
    public bool TryFindNearest(ulong address, out KernelSymbol symbol) => _index.Value.TryFindNearest(address, out symbol);

    /// <inheritdoc />
    public void Dispose() => _file?.Dispose();
}
