using System.CommandLine;
using System.Globalization;

namespace KvmTyped.Cli;

/// <summary>`info`: what the image is.</summary>
internal static class InfoCommand
{
    public static Command Build(CommonOptions common, TextWriter stdout, TextWriter stderr)
    {
        var cmd = new Command("info", "data model, machine, format, page size, release, segments and section files");
        cmd.SetAction(r =>
        {
            using var kvm = common.Open(r, stderr, refuseUnfitTypes: false);
            if (kvm is null)
                return CommandLine.Failure;
            var dump = kvm.DescribeDump();
            if (r.GetValue(common.Json))
                stdout.WriteLine(Json(kvm, dump));
            else
                Text(kvm, dump, stdout);
            return 0;
        });
        return cmd;
    }

    private static string MachineName(Kvm kvm) => kvm.Machine.UnameName();

    private static void Text(Kvm kvm, DumpInfo dump, TextWriter o)
    {
        var inv = CultureInfo.InvariantCulture;
        o.WriteLine($"data model:   {kvm.DataModel}");
        o.WriteLine($"machine:      {MachineName(kvm)}");
        o.WriteLine($"format:       {kvm.FormatName}");
        o.WriteLine($"page size:    {kvm.PageSize.ToString(inv)}");
        o.WriteLine($"release:      {(kvm.Release is { } release ? Output.Escape(release) : "(unknown)")}");
        o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"namelist:     {kvm.NamelistPath} ({kvm.NamelistKind}, {kvm.SymbolCount:N0} symbols)"));
        o.WriteLine($"core:         {kvm.CorePath}{(kvm.IsLive ? " (live kernel)" : "")}{(kvm.IsWritable ? " (read-write)" : "")}");
        if (kvm.CpuCount > 0)
            o.WriteLine($"cpus:         {kvm.CpuCount.ToString(inv)}");
        if (kvm.KaslrOffsetKnown)
            o.WriteLine($"kaslr offset: {Output.Hex(kvm.KaslrOffset)}{(kvm.KaslrSource is { } source ? $" ({source})" : "")}");
        else
            o.WriteLine("kaslr offset: unknown (symbols from the dump are at running addresses and VMCOREINFO has no KERNELOFFSET; -n System.map tells it)");
        if (kvm.DataModel == DataModel.LP64)
            o.WriteLine($"phys_base:    {SignedHex(kvm.PhysBase)}");
        if (kvm.PagingLevels is { } levels && kvm.RootTable is { } root)
        {
            o.WriteLine($"paging:       {levels.ToString(inv)} levels{(kvm.DataModel == DataModel.ILP32 ? (kvm.IsPae ? " (PAE)" : " (non-PAE)") : "")}, root table {Output.Hex(root)}");
            if (kvm.PageOffset is { } pageOffset)
                o.WriteLine($"page offset:  {Output.Hex(pageOffset)}");
        }
        if (dump.Kdump is { } k)
            o.WriteLine($"kdump:        header version {k.HeaderVersion.ToString(inv)}, pages {string.Join(',', k.Codecs)}{(k.Flattened ? ", flattened" : "")}{(k.Incomplete ? ", incomplete" : "")}");
        var ranges = dump.Ranges;
        ulong total = 0;
        foreach (var r in ranges)
            total += r.Length;
        o.WriteLine($"memory:       {ranges.Count.ToString(inv)} {(ranges.Count == 1 ? "range" : "ranges")}, {(total >> 20).ToString(inv)} MiB");
        foreach (var r in ranges.Take(32))
            o.WriteLine($"  {r.Start:x12}-{r.End:x12}  {r.Origin}");
        if (ranges.Count > 32)
            o.WriteLine($"  … {(ranges.Count - 32).ToString(inv)} more");
        o.WriteLine($"btf:          {BtfSource(kvm)}");
        if (TypeCheck(kvm) is { } check)
        {
            o.WriteLine($"types:        {check.Agreeing.Count.ToString(inv)} complete structs agree with BTF");
            foreach (var d in check.Disagreements)
                o.WriteLine($"types:        {d.Message}");
        }
        foreach (var s in kvm.SectionFiles)
            o.WriteLine($"section file: {s.FileName} {s.PhysicalAddress:x}+{s.Size:x}{(s.Present ? "" : " (missing)")}");
        foreach (var w in kvm.Warnings)
            o.WriteLine($"warning:      {ApiTerms.ToFlags(w)}");
    }

    /// <summary>Where the kernel's BTF comes from, or "none" and why.</summary>
    private static string BtfSource(Kvm kvm)
    {
        try
        {
            return KernelBtf.For(kvm).Source;
        }
        catch (KvmException e)
        {
            return "none (" + ApiTerms.ToFlags(e.Message) + ")";
        }
    }

    /// <summary>The shipped complete structs checked against the image's BTF; null without BTF.</summary>
    private static KernelTypeCheckResult? TypeCheck(Kvm kvm)
    {
        try
        {
            return KernelTypeCheck.Check(kvm, ShippedSchemas.CompleteStructs(kvm.DataModel));
        }
        catch (KvmException)
        {
            return null;
        }
    }

    private static string SignedHex(long v) => v < 0 ? "-" + Output.Hex((ulong)-v) : Output.Hex((ulong)v);

    private static string Json(Kvm kvm, DumpInfo dump) => Output.Json(w =>
    {
        w.WriteStartObject();
        w.WriteString("dataModel", kvm.DataModel.ToString());
        w.WriteString("machine", MachineName(kvm));
        w.WriteString("format", kvm.FormatName);
        w.WriteNumber("pageSize", kvm.PageSize);
        if (kvm.Release is { } rel)
            w.WriteString("release", rel);
        else
            w.WriteNull("release");
        w.WriteString("namelist", kvm.NamelistPath);
        w.WriteString("namelistKind", kvm.NamelistKind);
        w.WriteNumber("symbolCount", kvm.SymbolCount);
        w.WriteString("core", kvm.CorePath);
        w.WriteBoolean("live", kvm.IsLive);
        w.WriteBoolean("writable", kvm.IsWritable);
        w.WriteNumber("cpus", kvm.CpuCount);
        w.WriteString("kaslrOffset", kvm.KaslrOffsetKnown ? Output.Hex(kvm.KaslrOffset) : null);
        w.WriteString("physBase", SignedHex(kvm.PhysBase));
        if (kvm.PagingLevels is { } levels && kvm.RootTable is { } root)
        {
            w.WriteString("kaslrSource", kvm.KaslrOffsetKnown ? kvm.KaslrSource : null);
            w.WriteNumber("pagingLevels", levels);
            w.WriteBoolean("pae", kvm.IsPae);
            w.WriteString("pageOffset", kvm.PageOffset is { } pageOffset ? Output.Hex(pageOffset) : null);
            w.WriteString("rootTable", Output.Hex(root));
        }
        else
        {
            w.WriteNull("pagingLevels");
            w.WriteBoolean("pae", false);
        }
        if (dump.Kdump is { } k)
        {
            w.WriteStartObject("kdump");
            w.WriteNumber("headerVersion", k.HeaderVersion);
            w.WriteStartArray("codecs");
            foreach (var c in k.Codecs)
                w.WriteStringValue(c);
            w.WriteEndArray();
            w.WriteBoolean("flattened", k.Flattened);
            w.WriteBoolean("incomplete", k.Incomplete);
            w.WriteEndObject();
        }
        w.WriteString("btf", BtfSource(kvm));
        if (TypeCheck(kvm) is { } check)
        {
            w.WriteStartObject("typeCheck");
            w.WriteNumber("agree", check.Agreeing.Count);
            w.WriteStartArray("disagreements");
            foreach (var d in check.Disagreements)
                w.WriteStringValue(d.Message);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        else
        {
            w.WriteNull("typeCheck");
        }
        w.WriteStartArray("memory");
        foreach (var r in dump.Ranges)
        {
            w.WriteStartObject();
            w.WriteString("start", Output.Hex(r.Start));
            w.WriteString("end", Output.Hex(r.End));
            w.WriteString("origin", r.Origin);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("sectionFiles");
        foreach (var s in kvm.SectionFiles)
        {
            w.WriteStartObject();
            w.WriteString("name", s.FileName);
            w.WriteString("start", Output.Hex(s.PhysicalAddress));
            w.WriteString("size", Output.Hex(s.Size));
            w.WriteBoolean("present", s.Present);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("warnings");
        foreach (var s in kvm.Warnings)
            w.WriteStringValue(s);
        w.WriteEndArray();
        w.WriteEndObject();
    });
}
