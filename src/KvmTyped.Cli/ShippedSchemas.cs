using KvmTyped.Generators.Schema;
using KvmTyped.Types;

namespace KvmTyped.Cli;

/// <summary>The schemas/linux headers built into the tool, laid out by the generator's own code.</summary>
internal static class ShippedSchemas
{
    /// <summary>The complete (not preserve_access_index) named structs of schemas/linux under a data model.</summary>
    public static IReadOnlyList<KernelStructLayout> CompleteStructs(DataModel model)
    {
        var assembly = typeof(ShippedSchemas).Assembly;
        var units = new List<SchemaUnit>();
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith("schemas/linux/", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var reader = new StreamReader(stream);
            units.Add(SchemaParser.Parse(name, reader.ReadToEnd()));
        }
        var schema = SchemaResolver.Resolve(units);
        var layout = new SchemaLayout(schema, model == DataModel.LP64);
        var result = new List<KernelStructLayout>();
        foreach (var s in schema.Structs)
        {
            if (s.IsAnonymous || s.PreserveAccessIndex || layout.Get(s.Name) is not { } l)
                continue;
            result.Add(new KernelStructLayout(l.Name, (ulong)l.Size, l.Align,
                [.. l.Fields.Select(f => new KernelFieldLayout(f.Name, (ulong)f.Offset, (ulong)f.Size, (ulong)f.BitOffset, f.BitSize))]));
        }
        return result;
    }
}
