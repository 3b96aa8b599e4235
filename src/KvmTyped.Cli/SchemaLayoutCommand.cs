using System.Text.Json;
using KvmTyped.Generators.Schema;

namespace KvmTyped.Cli;

/// <summary>`kvmtyped schema layout FILE.h [--model ilp32|lp64] [--json]`: the layout of every struct and union
/// of a schema file, computed by the same parser and layout code the source generator uses.</summary>
internal static class SchemaLayoutCommand
{
    /// <summary>The most diagnostics printed: a file that is not C at all gives one per line, and the first few say it.</summary>
    internal const int MaxErrorsShown = 10;

    /// <summary>Output.Number's rule (a JSON number up to 2^53, a "0x…" string above), here because this file is also
    /// compiled without Output, into the generator's tests.</summary>
    private static void Number(Utf8JsonWriter w, string name, long value)
    {
        if (value >= 0 && (ulong)value > 1UL << 53)
            w.WriteString(name, "0x" + value.ToString("x", System.Globalization.CultureInfo.InvariantCulture));
        else if (value < -(1L << 53))
            w.WriteString(name, "-0x" + (unchecked((ulong)-(value + 1)) + 1).ToString("x", System.Globalization.CultureInfo.InvariantCulture));
        else
            w.WriteNumber(name, value);
    }

    /// <summary>Runs the command. Exit 0 on success, 1 when the file is unreadable or has schema errors
    /// (printed as <c>kvmtyped: file:line:col: KVMTnnnn message</c>), 2 on a bad --model.</summary>
    /// <remarks>Without --model the LP64 layout is printed. In JSON, a bitfield's offset is the byte holding its
    /// first bit and its size the size of its declared type; a member that is not a bitfield has
    /// bitOffset = offset * 8 and bitSize = 0. Structs marked preserve_access_index have no static layout: they are
    /// named in "relocatable" instead of "structs".</remarks>
    internal static int Run(string file, string? model, bool json, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        bool lp64;
        switch (model?.ToUpperInvariant())
        {
            case null or "LP64":
                lp64 = true;
                break;
            case "ILP32":
                lp64 = false;
                break;
            default:
                stderr.WriteLine($"kvmtyped: unknown data model '{model}' (expected ilp32 or lp64)");
                return 2;
        }

        var (text, error) = ReadSchemaFile(file);
        if (error is not null)
        {
            stderr.WriteLine($"kvmtyped: {file}: {error}");
            return 1;
        }

        var unit = SchemaParser.Parse(file, text);
        var schema = SchemaResolver.Resolve(new[] { unit });
        if (schema.Diagnostics.Count > 0)
        {
            foreach (var d in schema.Diagnostics.Take(MaxErrorsShown))
                stderr.WriteLine($"kvmtyped: {d.Pos}: {d.Id} {d.Message}");
            if (schema.Diagnostics.Count > MaxErrorsShown)
                stderr.WriteLine($"kvmtyped: {file}: {(schema.Diagnostics.Count - MaxErrorsShown).ToString(System.Globalization.CultureInfo.InvariantCulture)} more errors not shown (is it a C schema?)");
            return 1;
        }

        var layout = new SchemaLayout(schema, lp64);
        var structs = new List<StructLayout>();
        var relocatable = new List<string>();
        foreach (var s in schema.Structs)
        {
            if (s.IsAnonymous) continue;
            if (s.PreserveAccessIndex)
            {
                relocatable.Add(s.Name);
                continue;
            }
            structs.Add(layout.Get(s.Name)!);
        }

        if (json)
        {
            WriteJson(structs, relocatable, stdout);
        }
        else
        {
            stdout.WriteLine($"# {(lp64 ? "LP64" : "ILP32")} layout of {file}");
            foreach (var s in structs)
            {
                stdout.WriteLine($"{s.Name}: size {s.Size}, align {s.Align}");
                foreach (var f in s.Fields)
                {
                    var bits = f.BitSize > 0 ? $", bits {f.BitOffset}..{f.BitOffset + f.BitSize - 1}" : string.Empty;
                    stdout.WriteLine($"  {f.Offset,6} {f.Size,5}  {f.Name} ({f.Type}){bits}");
                }
            }
            foreach (var r in relocatable) stdout.WriteLine($"{r}: relocated from the kernel's BTF (preserve_access_index)");
        }
        return 0;
    }

    /// <summary>The text of a schema file, or why it cannot be one: a directory, a device or pipe (a file that gives
    /// more bytes than its size says), or more than <see cref="SchemaLimits.MaxSchemaFileBytes"/> bytes. At most that
    /// many bytes (plus one) are read, whatever the file.</summary>
    internal static (string Text, string? Error) ReadSchemaFile(string file)
    {
        if (Directory.Exists(file))
            return ("", "is a directory, not a schema file");
        try
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 1, FileOptions.SequentialScan);
            var declared = stream.CanSeek ? stream.Length : -1;
            if (declared > SchemaLimits.MaxSchemaFileBytes)
                return ("", $"is {declared} bytes, more than the {SchemaLimits.MaxSchemaFileBytes >> 20} MiB a schema file may have");
            var buffer = new byte[Math.Max(declared, 0) + 1];
            var got = 0;
            int n;
            while (got < buffer.Length && (n = stream.Read(buffer, got, buffer.Length - got)) > 0)
                got += n;
            if (got > declared)
            {
                // A regular file gives exactly its size; one that gives more is a device, a pipe or a procfs file.
                return ("", "is not a regular file (a device or a pipe): give a schema file");
            }
            return (new System.Text.UTF8Encoding(false).GetString(buffer, 0, got).TrimStart('\uFEFF'), null);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The wording of Output.FileError (this file is also compiled without it, into the generator's tests).
            return ("", e switch
            {
                FileNotFoundException or DirectoryNotFoundException => "No such file or directory",
                UnauthorizedAccessException => "Permission denied",
                _ => e.Message,
            });
        }
    }

    private static void WriteJson(List<StructLayout> structs, List<string> relocatable, TextWriter stdout)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteStartArray("structs");
            foreach (var s in structs)
            {
                w.WriteStartObject();
                w.WriteString("name", s.Name);
                Number(w, "size", s.Size);
                Number(w, "align", s.Align);
                w.WriteStartArray("fields");
                foreach (var f in s.Fields)
                {
                    w.WriteStartObject();
                    w.WriteString("name", f.Name);
                    Number(w, "offset", f.Offset);
                    Number(w, "size", f.Size);
                    Number(w, "bitOffset", f.BitOffset);
                    w.WriteNumber("bitSize", f.BitSize);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("relocatable");
            foreach (var r in relocatable) w.WriteStringValue(r);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        stdout.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
    }
}
