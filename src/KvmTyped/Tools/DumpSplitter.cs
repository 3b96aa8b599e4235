using System.Buffers.Binary;
using System.Text;
using KvmTyped.Formats;

namespace KvmTyped.Tools;

/// <summary>How <see cref="DumpSplitter"/> cuts a dump.</summary>
public sealed record SplitOptions
{
    /// <summary>Name of the core written in the output folder.</summary>
    public string CoreName { get; init; } = "vmcore";

    /// <summary>Memory kept in the core itself; the rest goes to section files.</summary>
    public long CoreBytes { get; init; } = 64L << 20;

    /// <summary>Largest section file.</summary>
    public long SectionBytes { get; init; } = 256L << 20;

    /// <summary>Gaps between readable runs up to this size are filled with zeros rather than starting a new segment.</summary>
    public long MergeGap { get; init; } = 1L << 20;

    /// <summary>Receives the fraction of memory done, from 0 to 1.</summary>
    public IProgress<double>? Progress { get; init; }
}

/// <summary>Writes a kernel image's physical memory as an ELF core plus section files in the reference format
/// (docs/formats/section-files.md): pages that cannot be read (excluded from a kdump) are left out.</summary>
public static class DumpSplitter
{
    private const int Page = 4096;

    /// <summary>Largest image split (4 TiB): beyond it, a range is more likely a hostile header than memory.</summary>
    private const ulong MaxBytes = 4UL << 40;

    /// <summary>Splits <paramref name="kvm"/>'s memory into <paramref name="outputDirectory"/>; returns the files written, core first.</summary>
    public static IReadOnlyList<string> Split(Kvm kvm, string outputDirectory, SplitOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        options ??= new SplitOptions();
        var total0 = kvm.Physical.Ranges.Aggregate(0UL, (sum, r) => sum + Math.Min(r.Length, MaxBytes));
        if (total0 > MaxBytes)
            throw new KvmException($"the image's memory ranges add up to more than {MaxBytes >> 40} TiB: too large to split");
        Directory.CreateDirectory(outputDirectory);
        var runs = ReadableRuns(kvm.Physical, options);
        var total = runs.Sum(r => (double)(r.End - r.Start));

        // The first runs, up to CoreBytes, stay in the core; the rest become section files of at most SectionBytes.
        var inCore = new List<(ulong Start, ulong End)>();
        var sections = new List<(ulong Start, ulong End, string Name)>();
        long kept = 0;
        foreach (var (start, end) in runs)
        {
            var s = start;
            while (s < end)
            {
                if (kept < options.CoreBytes)
                {
                    var n = Math.Min(end - s, (ulong)(options.CoreBytes - kept));
                    inCore.Add((s, s + n));
                    kept += (long)n;
                    s += n;
                }
                else
                {
                    var n = Math.Min(end - s, (ulong)options.SectionBytes);
                    sections.Add((s, s + n, $"{options.CoreName}.{sections.Count + 1}"));
                    s += n;
                }
            }
        }
        if (sections.Count > SectionFileReference.MaxReferences)
            throw new KvmException($"the dump would need {sections.Count} section files, more than {SectionFileReference.MaxReferences}: raise the section size");

        var notes = new List<(string Name, uint Type, byte[] Desc)>();
        if (kvm.VmcoreInfoData is { } vmi)
            notes.Add(("VMCOREINFO", 0, Encoding.ASCII.GetBytes(string.Concat(vmi.Entries.Select(e => $"{e.Key}={e.Value}\n")))));
        foreach (var (start, end, name) in sections)
            notes.Add((SectionFileReference.NoteName, SectionFileReference.NoteType, new SectionFileReference(name, start, 0, end - start).Encode()));

        // Never write over what is being read: the core, its section files, the other parts of a split set.
        var inputs = new HashSet<string>(StringComparer.Ordinal) { FullPath(kvm.CorePath) };
        var coreDir = Path.GetDirectoryName(Path.GetFullPath(kvm.CorePath)) ?? ".";
        foreach (var s in kvm.SectionFiles)
            inputs.Add(FullPath(Path.Combine(coreDir, s.FileName)));
        if (kvm.Physical is Formats.Kdump.KdumpFile k)
            foreach (var p in k.Paths)
                inputs.Add(FullPath(p));
        foreach (var name in sections.Select(x => x.Name).Prepend(options.CoreName))
        {
            var target = FullPath(Path.Combine(outputDirectory, name));
            if (inputs.Contains(target))
                throw new KvmException($"{target} is one of the files being split: write to another folder or name");
        }

        var files = new List<string>();
        var buffer = new byte[1 << 20];
        double done = 0;
        var corePath = Path.Combine(outputDirectory, options.CoreName);
        using (var core = new FileStream(corePath, FileMode.Create, FileAccess.Write))
        {
            var machine = (ushort)(kvm.Machine switch { KernelMachine.X86 => 3, KernelMachine.Arm64 => 183, _ => 62 });
            var needs64 = kvm.DataModel == DataModel.LP64 || inCore.Any(r => r.End > uint.MaxValue);
            var layout = WriteHeaders(core, needs64, machine, notes, inCore);
            for (var i = 0; i < inCore.Count; i++)
            {
                core.Position = layout[i];
                Copy(kvm.Physical, inCore[i].Start, inCore[i].End, core, buffer, ref done, total, options.Progress);
            }
        }
        files.Add(corePath);
        foreach (var (start, end, name) in sections)
        {
            var path = Path.Combine(outputDirectory, name);
            using (var f = new FileStream(path, FileMode.Create, FileAccess.Write))
                Copy(kvm.Physical, start, end, f, buffer, ref done, total, options.Progress);
            files.Add(path);
        }
        options.Progress?.Report(1);
        return files;
    }

    /// <summary>The full path with symbolic links resolved, so two names of one file compare equal.</summary>
    private static string FullPath(string path)
    {
        var full = Path.GetFullPath(path);
        try
        {
            return new FileInfo(full).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? full;
        }
        catch (IOException)
        {
            return full;
        }
    }

    /// <summary>Runs of readable pages, with small unreadable gaps merged in (they read as zeros when copied).</summary>
    private static List<(ulong Start, ulong End)> ReadableRuns(IPhysicalMemory memory, SplitOptions options)
    {
        var runs = new List<(ulong Start, ulong End)>();
        Span<byte> probe = stackalloc byte[1];
        foreach (var r in memory.Ranges)
        {
            ulong? start = null;
            var first = r.Start & ~(ulong)(Page - 1);
            for (var a = first; a < r.End && a >= first; a += Page)
            {
                var ok = memory.TryRead(Math.Max(a, r.Start), probe, out _);
                if (ok && start is null)
                    start = Math.Max(a, r.Start);
                else if (!ok && start is ulong s)
                {
                    Add(runs, s, a, options.MergeGap);
                    start = null;
                }
            }
            if (start is ulong s2)
                Add(runs, s2, r.End, options.MergeGap);
        }
        return runs;

        static void Add(List<(ulong Start, ulong End)> runs, ulong start, ulong end, long gap)
        {
            if (runs.Count > 0 && start >= runs[^1].End && start - runs[^1].End <= (ulong)gap)
                runs[^1] = (runs[^1].Start, end);
            else
                runs.Add((start, end));
        }
    }

    private static void Copy(IPhysicalMemory memory, ulong start, ulong end, Stream output, byte[] buffer, ref double done, double total, IProgress<double>? progress)
    {
        for (var a = start; a < end;)
        {
            var n = (int)Math.Min((ulong)buffer.Length, end - a);
            var chunk = buffer.AsSpan(0, n);
            if (!memory.TryRead(a, chunk, out _))
            {
                // A merged gap: copy page by page, zeros where a page cannot be read.
                for (var off = 0; off < n; off += Page)
                {
                    var len = Math.Min(Page, n - off);
                    if (!memory.TryRead(a + (ulong)off, chunk.Slice(off, len), out _))
                        chunk.Slice(off, len).Clear();
                }
            }
            output.Write(chunk);
            a += (ulong)n;
            done += n;
            progress?.Report(total > 0 ? done / total : 1);
        }
    }

    /// <summary>Writes the ELF header, program headers and notes; returns each PT_LOAD's file offset.</summary>
    private static long[] WriteHeaders(Stream s, bool is64, ushort machine, List<(string Name, uint Type, byte[] Desc)> notes, List<(ulong Start, ulong End)> loads)
    {
        var note = new MemoryStream();
        var h = new byte[12];
        foreach (var (name, type, desc) in notes)
        {
            var nb = Encoding.ASCII.GetBytes(name + "\0");
            BinaryPrimitives.WriteUInt32LittleEndian(h, (uint)nb.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(4), (uint)desc.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(8), type);
            note.Write(h);
            note.Write(nb);
            note.Write(new byte[(4 - nb.Length % 4) % 4]);
            note.Write(desc);
            note.Write(new byte[(4 - desc.Length % 4) % 4]);
        }
        var noteBytes = note.ToArray();
        var ehsize = is64 ? 64 : 52;
        var phent = is64 ? 56 : 32;
        var phnum = 1 + loads.Count;
        if (phnum >= 0xffff)
            throw new KvmException($"{loads.Count} segments are too many for one core: raise the merge gap");
        long cursor = ehsize + (long)phnum * phent;
        var noteOff = cursor;
        cursor += noteBytes.Length;
        var offsets = new long[loads.Count];
        for (var i = 0; i < loads.Count; i++)
        {
            cursor = (cursor + Page - 1) & ~(long)(Page - 1);
            offsets[i] = cursor;
            cursor += (long)(loads[i].End - loads[i].Start);
        }
        var head = new byte[ehsize + phnum * phent];
        head[0] = 0x7f; head[1] = (byte)'E'; head[2] = (byte)'L'; head[3] = (byte)'F';
        head[4] = (byte)(is64 ? 2 : 1);
        head[5] = 1;
        head[6] = 1;
        var hs = head.AsSpan();
        BinaryPrimitives.WriteUInt16LittleEndian(hs[16..], 4);
        BinaryPrimitives.WriteUInt16LittleEndian(hs[18..], machine);
        BinaryPrimitives.WriteUInt32LittleEndian(hs[20..], 1);
        if (is64)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(hs[32..], (ulong)ehsize);
            BinaryPrimitives.WriteUInt16LittleEndian(hs[52..], (ushort)ehsize);
            BinaryPrimitives.WriteUInt16LittleEndian(hs[54..], (ushort)phent);
            BinaryPrimitives.WriteUInt16LittleEndian(hs[56..], (ushort)phnum);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(hs[28..], (uint)ehsize);
            BinaryPrimitives.WriteUInt16LittleEndian(hs[40..], (ushort)ehsize);
            BinaryPrimitives.WriteUInt16LittleEndian(hs[42..], (ushort)phent);
            BinaryPrimitives.WriteUInt16LittleEndian(hs[44..], (ushort)phnum);
        }
        void Phdr(int i, uint type, long off, ulong paddr, long size)
        {
            var p = head.AsSpan(ehsize + i * phent);
            BinaryPrimitives.WriteUInt32LittleEndian(p, type);
            if (is64)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(p[4..], type == 1 ? 7u : 0);
                BinaryPrimitives.WriteUInt64LittleEndian(p[8..], (ulong)off);
                BinaryPrimitives.WriteUInt64LittleEndian(p[24..], paddr);
                BinaryPrimitives.WriteUInt64LittleEndian(p[32..], (ulong)size);
                BinaryPrimitives.WriteUInt64LittleEndian(p[40..], (ulong)size);
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(p[4..], (uint)off);
                BinaryPrimitives.WriteUInt32LittleEndian(p[12..], (uint)paddr);
                BinaryPrimitives.WriteUInt32LittleEndian(p[16..], (uint)size);
                BinaryPrimitives.WriteUInt32LittleEndian(p[20..], (uint)size);
                BinaryPrimitives.WriteUInt32LittleEndian(p[24..], type == 1 ? 7u : 0);
            }
        }
        Phdr(0, 4, noteOff, 0, noteBytes.Length);
        for (var i = 0; i < loads.Count; i++)
            Phdr(i + 1, 1, offsets[i], loads[i].Start, (long)(loads[i].End - loads[i].Start));
        s.Write(head);
        s.Write(noteBytes);
        s.SetLength(cursor);
        return offsets;
    }
}
