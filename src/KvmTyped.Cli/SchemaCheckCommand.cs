using System.CommandLine;
using System.Text.Json;
using KvmTyped.Btf;
using KvmTyped.Generators.Schema;
using KvmTyped.Tools;

namespace KvmTyped.Cli;

/// <summary>`kvmtyped schema check FILE.h… --btf K1 --btf K2 … [--arch NAME] [--with-shipped] [--json]`: checks the
/// structs of schema files against target kernels' BTF, with the code the build uses (the build task's kernel reader
/// and digest, the generator's checker), so it prints the findings a project build reports (KVMT0100–KVMT0105).</summary>
internal static class SchemaCheckCommand
{
    /// <summary>Exit code when a kernel disagrees with a declaration.</summary>
    public const int Findings = 1;

    public static Command Build(CommonOptions common, TextWriter stdout, TextWriter stderr)
    {
        var files = new Argument<string[]>("file") { Arity = ArgumentArity.OneOrMore, Description = "C schema files, checked together" };
        var kernels = new Option<string[]>("--btf", "--kernel", "-k")
        {
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = false,
            Description = "a target kernel: raw BTF (/sys/kernel/btf/vmlinux), or an ELF vmlinux with .BTF; .gz accepted; repeat for each",
        };
        var arch = new Option<string?>("--arch") { Description = "the files are one architecture's (x86_64, i386, aarch64, …): checked only against kernels of it" };
        var shipped = new Option<bool>("--with-shipped") { Description = "resolve with the shipped schemas (list_head, task_struct, …) too, and check them" };
        var check = new Command("check", "check schema structs against target kernels' BTF, as a project build with KvmTypedKernel items does") { files, kernels, arch, shipped };
        check.SetAction(r => Run(r.GetValue(files)!, r.GetValue(kernels) ?? [], r.GetValue(arch), r.GetValue(shipped), r.GetValue(common.Json), stdout, stderr));
        return check;
    }

    /// <summary>Runs the check. Exit 0 when every kernel agrees, 1 on findings or schema errors (printed as
    /// <c>file:line:col: warning KVMTnnnn: message</c>, or as JSON), 2 when a kernel file cannot be read or none is given.</summary>
    internal static int Run(IReadOnlyList<string> files, IReadOnlyList<string> kernelFiles, string? arch, bool withShipped, bool json, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(files);
        ArgumentNullException.ThrowIfNull(kernelFiles);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        if (kernelFiles.Count == 0)
        {
            stderr.WriteLine("kvmtyped: schema check needs at least one kernel: --btf FILE (raw BTF or a vmlinux with .BTF)");
            return CommandLine.Usage;
        }
        var group = arch is { Length: > 0 } ? arch.Trim() : null;
        var units = new List<SchemaUnit>();
        if (withShipped)
        {
            var assembly = typeof(SchemaCheckCommand).Assembly;
            foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith("schemas/linux/", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
            {
                using var reader = new StreamReader(assembly.GetManifestResourceStream(name)!);
                units.Add(SchemaParser.Parse(name, reader.ReadToEnd()));
            }
        }
        foreach (var file in files)
        {
            try
            {
                units.Add(SchemaParser.Parse(file, File.ReadAllText(file)).InArch(group));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                stderr.WriteLine($"kvmtyped: {file}: {Output.Escape(Output.FileError(e))}");
                return CommandLine.Failure;
            }
        }
        var schema = SchemaResolver.Resolve(units);
        if (schema.Diagnostics.Count > 0)
        {
            foreach (var d in schema.Diagnostics)
                stderr.WriteLine($"kvmtyped: {d.Pos}: {d.Id} {Output.Escape(d.Message)}");
            return CommandLine.Failure;
        }
        var model = new KernelCheckModel(KernelChecker.Describe(schema, null).Concat(group is null ? [] : KernelChecker.Describe(schema, group)).ToEquatableArray());

        var perKernel = new List<KernelFindings>();
        var checkedKernels = new List<KernelDigest>();
        foreach (var path in kernelFiles)
        {
            KernelDigest kernel;
            try
            {
                kernel = KernelDigest.Parse(path, KernelDigests.FromFile(path));
            }
            catch (KvmException e)
            {
                stderr.WriteLine($"kvmtyped: cannot read the BTF of {path}: {Output.Escape(e.Message)}");
                return CommandLine.Usage;
            }
            checkedKernels.Add(kernel);
            perKernel.Add(KernelChecker.Check(model, kernel));
        }
        var findings = KernelChecker.Report(perKernel).Select(f => (checkedKernels[f.Kernel], f.Finding)).ToList();

        if (json)
        {
            WriteJson(checkedKernels, findings, stdout);
        }
        else
        {
            foreach (var (_, d) in findings)
                stdout.WriteLine($"{d.Pos}: warning {d.Id}: {Output.Escape(d.Message)}");
            stdout.WriteLine($"{findings.Count} finding{(findings.Count == 1 ? "" : "s")} in {model.Structs.Count} struct{(model.Structs.Count == 1 ? "" : "s")} against "
                + string.Join(", ", checkedKernels.Select(k => $"{k.Release} ({k.Machine})")));
        }
        return findings.Count == 0 ? 0 : Findings;
    }

    private static void WriteJson(List<KernelDigest> kernels, List<(KernelDigest Kernel, SchemaDiagnostic Finding)> findings, TextWriter stdout)
    {
        stdout.WriteLine(Output.Json(w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("kernels");
            foreach (var k in kernels)
            {
                w.WriteStartObject();
                w.WriteString("release", k.Release);
                w.WriteString("machine", k.Machine);
                w.WriteNumber("pointerSize", k.PointerSize);
                w.WriteString("source", k.Source);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("findings");
            foreach (var (k, d) in findings)
            {
                w.WriteStartObject();
                w.WriteString("id", d.Id);
                w.WriteString("kernel", k.Release);
                w.WriteString("file", d.Pos.File);
                w.WriteNumber("line", d.Pos.Line);
                w.WriteNumber("column", d.Pos.Column);
                w.WriteString("message", d.Message);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }));
    }
}
