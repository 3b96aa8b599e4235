using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using KvmTyped.Formats;
using KvmTyped.Formats.Elf;

namespace KvmTyped.Dwarf;

/// <summary>A per-user cache of BTF converted from DWARF, so a kernel's DWARF is converted once (docs/cache.md).</summary>
/// <remarks>
/// <para>Key: the ELF file's GNU build ID (NT_GNU_BUILD_ID, from a note section or PT_NOTE segment), which names the
/// kernel build whatever the file is called; without one, the full path, size and modification time. The file name is
/// derived from the key and <see cref="DwarfToBtf.FormatVersion"/>; the file repeats both in its header, with the blob's
/// length and SHA-256, so a hash collision, a change of converter or a torn or altered file is a miss, never wrong
/// types (and the blob is checked again by <see cref="Btf.BtfTypes"/> when parsed, like any BTF).</para>
/// <para>Writes go to a temporary file in the same folder, renamed over the entry, so a reader sees the old entry or the
/// new one. After each write the folder is trimmed to its size bound, least recently used first (a hit touches its
/// file's modification time). Failing to read or write the cache never fails a load.</para>
/// </remarks>
internal static class DwarfBtfCache
{
    /// <summary>Set to anything but <c>0</c> to bypass the cache.</summary>
    public const string NoCacheVariable = "KVMTYPED_NO_CACHE";

    /// <summary>The default bound on the cache's size (a kernel's BTF is 2–6 MB).</summary>
    public const long DefaultMaxBytes = 256L << 20;

    /// <summary>The largest cached blob read back.</summary>
    public const long MaxEntryBytes = Btf.BtfReader.MaxBlobLength;

    /// <summary>The most bytes of a build ID note descriptor used.</summary>
    private const int MaxBuildIdLength = 64;

    private const string FilePrefix = "dwarf-btf-";
    private const string FileSuffix = ".btf";
    private const string TempPrefix = ".tmp-dwarf-btf-";
    private const int HeaderLength = 56;
    private const uint NtGnuBuildId = 3;
    private const uint ShtNote = 7;
    private static readonly byte[] Magic = "KVMTDWBT"u8.ToArray();

    /// <summary>Whether the environment asks for no cache.</summary>
    public static bool DisabledByEnvironment =>
        Environment.GetEnvironmentVariable(NoCacheVariable) is { Length: > 0 } v && v != "0";

    /// <summary>The default folder: <c>$XDG_CACHE_HOME/kvmtyped</c> (when set to an absolute path), else
    /// <c>~/.cache/kvmtyped</c>; null when neither can be named.</summary>
    public static string? DefaultDirectory()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (!string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg))
            return Path.Combine(xdg, "kvmtyped");
        var home = Environment.GetEnvironmentVariable("HOME");
        if (string.IsNullOrEmpty(home))
            home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return string.IsNullOrEmpty(home) ? null : Path.Combine(home, ".cache", "kvmtyped");
    }

    /// <summary>The GNU build ID of an ELF file as lower-case hex, or null when it has none.</summary>
    public static string? BuildId(ElfImage image)
    {
        var file = image.File;
        var notes = new List<ElfNote>();
        foreach (var s in image.Sections)
        {
            if (s.Type == ShtNote && s.Size is >= 12 and <= ElfNotes.MaxNoteSize && file.Contains(s.Offset, s.Size))
                notes.AddRange(ElfNotes.Parse(file.Unchecked(s.Offset, (int)s.Size), image.BigEndian, file.Path, s.Offset, strict: false));
        }
        notes.AddRange(image.ReadNotes());
        foreach (var note in notes)
        {
            if (note.Name == "GNU" && note.Type == NtGnuBuildId && note.DescSize is > 0 and <= MaxBuildIdLength && file.Contains(note.DescOffset, note.DescSize))
                return Convert.ToHexStringLower(file.Unchecked(note.DescOffset, note.DescSize));
        }
        return null;
    }

    /// <summary>The cache key of an ELF file: <c>build-id:HEX</c>, else <c>file:PATH:SIZE:MTIME</c>.</summary>
    public static string Key(ElfImage image)
    {
        if (BuildId(image) is { } id)
            return "build-id:" + id;
        var info = new FileInfo(image.File.Path);
        return string.Create(CultureInfo.InvariantCulture, $"file:{info.FullName}:{info.Length}:{info.LastWriteTimeUtc.Ticks}");
    }

    /// <summary>The cache file for a key in a folder.</summary>
    public static string EntryPath(string directory, string key)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..32];
        return Path.Combine(directory, string.Create(CultureInfo.InvariantCulture, $"{FilePrefix}v{DwarfToBtf.FormatVersion}-{hash}{FileSuffix}"));
    }

    /// <summary>The cached blob for a key, or null on a miss (absent, another version or key, damaged). A damaged
    /// entry is deleted; a hit marks the entry as recently used.</summary>
    public static byte[]? TryRead(string directory, string key)
    {
        var path = EntryPath(directory, key);
        byte[] data;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
                return null;
            if (info.Length < HeaderLength || info.Length > MaxEntryBytes + HeaderLength + 4096)
            {
                TryDelete(path);
                return null;
            }
            data = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        var blob = Decode(data, key);
        if (blob is null)
        {
            TryDelete(path);
            return null;
        }
        try
        {
            File.SetLastWriteTimeUtc(path, DateTime.UtcNow);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A read-only cache still serves hits.
        }
        return blob;
    }

    /// <summary>The blob of an entry's bytes when header, version, key, length and checksum all match; else null.</summary>
    internal static byte[]? Decode(ReadOnlySpan<byte> data, string key)
    {
        if (data.Length < HeaderLength || !data[..8].SequenceEqual(Magic))
            return null;
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(data[8..]);
        uint keyLength = BinaryPrimitives.ReadUInt32LittleEndian(data[12..]);
        ulong blobLength = BinaryPrimitives.ReadUInt64LittleEndian(data[16..]);
        if (version != DwarfToBtf.FormatVersion || keyLength > 4096 || blobLength > MaxEntryBytes
            || (ulong)data.Length != (ulong)HeaderLength + keyLength + blobLength)
            return null;
        if (!data.Slice(HeaderLength, (int)keyLength).SequenceEqual(Encoding.UTF8.GetBytes(key)))
            return null;
        var blob = data.Slice(HeaderLength + (int)keyLength, (int)blobLength);
        if (!SHA256.HashData(blob).AsSpan().SequenceEqual(data.Slice(24, 32)))
            return null;
        return blob.ToArray();
    }

    /// <summary>An entry's bytes: header, key, blob.</summary>
    internal static byte[] Encode(string key, ReadOnlySpan<byte> blob)
    {
        var keyBytes = Encoding.UTF8.GetBytes(key);
        var data = new byte[HeaderLength + keyBytes.Length + blob.Length];
        Magic.CopyTo(data, 0);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(8), DwarfToBtf.FormatVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(12), (uint)keyBytes.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(16), (ulong)blob.Length);
        SHA256.HashData(blob, data.AsSpan(24, 32));
        keyBytes.CopyTo(data, HeaderLength);
        blob.CopyTo(data.AsSpan(HeaderLength + keyBytes.Length));
        return data;
    }

    /// <summary>Stores a blob under a key (temporary file, then rename), then trims the folder to
    /// <paramref name="maxBytes"/>. Returns the entry's path, or null when it was not stored (too large for the bound).</summary>
    /// <exception cref="IOException">The folder or file cannot be written.</exception>
    /// <exception cref="UnauthorizedAccessException">The folder or file cannot be written.</exception>
    public static string? Write(string directory, string key, ReadOnlySpan<byte> blob, long maxBytes)
    {
        var data = Encode(key, blob);
        if (data.Length > maxBytes)
            return null;
        if (OperatingSystem.IsWindows())
            Directory.CreateDirectory(directory);
        else
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var path = EntryPath(directory, key);
        var temp = Path.Combine(directory, string.Create(CultureInfo.InvariantCulture, $"{TempPrefix}{Environment.ProcessId}-{Guid.NewGuid():N}"));
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                stream.Write(data);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
        Trim(directory, maxBytes, path);
        return path;
    }

    /// <summary>Deletes entries, least recently used first, until the folder's entries take at most
    /// <paramref name="maxBytes"/>; removes temporary files abandoned for more than an hour.</summary>
    public static void Trim(string directory, long maxBytes, string? keep = null)
    {
        List<FileInfo> entries;
        try
        {
            var dir = new DirectoryInfo(directory);
            foreach (var stale in dir.EnumerateFiles(TempPrefix + "*"))
                if (stale.LastWriteTimeUtc < DateTime.UtcNow.AddHours(-1))
                    TryDelete(stale.FullName);
            entries = dir.EnumerateFiles(FilePrefix + "*" + FileSuffix).OrderBy(f => f.LastWriteTimeUtc).ThenBy(f => f.Name, StringComparer.Ordinal).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return;
        }
        long total = entries.Sum(f => f.Length);
        foreach (var f in entries)
        {
            if (total <= maxBytes)
                break;
            if (keep is not null && string.Equals(f.FullName, Path.GetFullPath(keep), StringComparison.Ordinal))
                continue;
            if (TryDelete(f.FullName))
                total -= f.Length;
        }
    }

    private static bool TryDelete(string path)
    {
        try
        {
            File.Delete(path);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
