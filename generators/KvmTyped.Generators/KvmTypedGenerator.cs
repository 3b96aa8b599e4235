using System;
using System.Linq;
using KvmTyped.Generators.Model;
using KvmTyped.Generators.Schema;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace KvmTyped.Generators;

/// <summary>Generates typed views of kernel structs from C schema files (AdditionalFiles *.h) and from C#
/// [KernelStruct] declarations, with ILP32 and LP64 layouts.</summary>
[Generator(LanguageNames.CSharp)]
public sealed partial class KvmTypedGenerator : IIncrementalGenerator
{
    /// <summary>The attribute that marks a C# declaration.</summary>
    public const string KernelStructAttribute = "KvmTyped.Types.KernelStructAttribute";

    /// <inheritdoc/>
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var options = context.AnalyzerConfigOptionsProvider
            .Select(static (o, _) => Options(o.GlobalOptions))
            .WithTrackingName(TrackingNames.Options);

        var schemaFiles = context.AdditionalTextsProvider
            .Combine(context.AnalyzerConfigOptionsProvider)
            .Where(static p => IsSchema(p.Left, p.Right.GetOptions(p.Left)))
            .Select(static (p, ct) => SchemaParser.Parse(p.Left.Path, p.Left.GetText(ct)?.ToString() ?? string.Empty).InArch(Arch(p.Right.GetOptions(p.Left))))
            .WithTrackingName(TrackingNames.SchemaFiles);

        var declarations = context.SyntaxProvider
            .ForAttributeWithMetadataName(KernelStructAttribute, static (node, _) => IsStructSyntax(node), static (c, ct) => ParseCSharp(c, ct))
            .WithTrackingName(TrackingNames.CSharpDeclarations);

        var build = schemaFiles.Collect()
            .Combine(declarations.Collect())
            .Combine(options)
            .Select(static (x, _) => BuildViews(x.Left.Left.Concat(x.Left.Right), x.Right))
            .WithTrackingName(TrackingNames.Resolve);

        var views = build.SelectMany(static (r, _) => r.Views).WithTrackingName(TrackingNames.Views);
        var enums = build.SelectMany(static (r, _) => r.Enums).WithTrackingName(TrackingNames.Enums);
        var diagnostics = build.Select(static (r, _) => r.Diagnostics).WithTrackingName(TrackingNames.Diagnostics);

        context.RegisterSourceOutput(views, static (spc, v) =>
        {
            if (v.DeclareType) spc.AddSource(v.Hint + ".decl.g.cs", EmitDeclaration(v));
            spc.AddSource(v.Hint + ".g.cs", EmitView(v));
        });
        context.RegisterSourceOutput(enums, static (spc, e) => spc.AddSource(e.Hint + ".enum.g.cs", EmitEnum(e)));
        context.RegisterSourceOutput(build.Select(static (r, _) => r.Stubs).WithTrackingName(TrackingNames.Stubs), static (spc, stubs) =>
        {
            var added = new System.Collections.Generic.HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var stub in stubs)
            {
                if (added.Add(stub.HintName)) spc.AddSource(stub.HintName, stub.Source);
            }
        });
        context.RegisterSourceOutput(diagnostics, static (spc, list) =>
        {
            foreach (var d in list) spc.ReportDiagnostic(DiagnosticDescriptors.ToDiagnostic(d));
        });

        // The target kernels: each digest the build task wrote (KvmTypedKernel items) is read on its own, and every
        // declaration is checked against each kernel on its own, so replacing one kernel re-checks only that one.
        var kernelOptions = context.AnalyzerConfigOptionsProvider
            .Select(static (o, _) => KernelCheckSeverity(o.GlobalOptions))
            .WithTrackingName(TrackingNames.KernelCheckOptions);
        var digests = context.AdditionalTextsProvider
            .Combine(context.AnalyzerConfigOptionsProvider)
            .Where(static p => IsKernelDigest(p.Left, p.Right.GetOptions(p.Left)))
            .Select(static (p, ct) => LoadDigest(p.Left, ct))
            .WithTrackingName(TrackingNames.KernelDigests);
        var checkModel = build.Select(static (r, _) => r.Checks).WithTrackingName(TrackingNames.KernelCheckModel);
        var findings = digests
            .Combine(checkModel)
            .Combine(kernelOptions)
            .Select(static (x, ct) => CheckKernel(x.Left.Left, x.Left.Right, x.Right, ct))
            .WithTrackingName(TrackingNames.KernelChecks);
        context.RegisterSourceOutput(findings.Collect().Combine(kernelOptions), static (spc, x) =>
        {
            foreach (var (_, d) in KernelChecker.Report(x.Left)) spc.ReportDiagnostic(DiagnosticDescriptors.ToDiagnostic(d, x.Right.Severity));
        });
        var targets = digests
            .Select(static (d, _) => d.Digest is { } k ? new TargetKernel(k.Release, k.Machine) : null)
            .Collect()
            .Combine(options)
            .Select(static (x, _) => new TargetKernelList(x.Right.Namespace, x.Left.Where(t => t is not null).Select(t => t!).ToEquatableArray()))
            .WithTrackingName(TrackingNames.TargetKernels);
        context.RegisterSourceOutput(targets, static (spc, list) =>
        {
            if (list.Kernels.Count > 0) spc.AddSource(HintName(list.Namespace, "KvmTypedTargetKernels", ".g.cs"), EmitTargetKernels(list));
        });
    }

    /// <summary>The name of a generated file: namespace (<c>global</c> for the global namespace), type name and suffix,
    /// with every character a hint name may not hold replaced, so no name from the input can make AddSource throw.</summary>
    internal static string HintName(string ns, string name, string suffix)
    {
        var text = (ns.Length == 0 ? "global" : ns) + "." + name;
        var chars = text.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            var c = chars[i];
            if (!(char.IsLetterOrDigit(c) || c is '_' or '.' or '-')) chars[i] = '_';
        }
        return new string(chars) + suffix;
    }

    /// <summary>A schema is an AdditionalFiles item whose KvmTypedSchema metadata is true (build/KvmTyped.targets sets
    /// it on every KvmTypedSchema item), so other .h files given to other generators are left alone.</summary>
    private static bool IsSchema(AdditionalText text, AnalyzerConfigOptions options) =>
        options.TryGetValue("build_metadata.AdditionalFiles.KvmTypedSchema", out var flag)
        && string.Equals(flag, "true", StringComparison.OrdinalIgnoreCase)
        && text.Path.Length > 0;

    /// <summary>The per-architecture group of a schema file: its KvmTypedArch metadata (build/KvmTyped.targets sets it on
    /// the schemas of schemas/linux/arch/NAME), or null for a common schema.</summary>
    private static string? Arch(AnalyzerConfigOptions options) =>
        options.TryGetValue("build_metadata.AdditionalFiles.KvmTypedArch", out var arch) && !string.IsNullOrWhiteSpace(arch)
            ? Identifier(arch.Trim())
            : null;

    /// <summary>The namespace is KvmTypedNamespace if set, else RootNamespace + ".Kernel", else "KvmTyped.Kernel";
    /// views are internal when KvmTypedAccessibility is "internal".</summary>
    private static GeneratorOptions Options(AnalyzerConfigOptions options)
    {
        var isInternal = options.TryGetValue("build_property.KvmTypedAccessibility", out var access)
            && string.Equals(access.Trim(), "internal", StringComparison.OrdinalIgnoreCase);
        if (options.TryGetValue("build_property.KvmTypedNamespace", out var ns) && !string.IsNullOrWhiteSpace(ns)) return new GeneratorOptions(ns.Trim(), isInternal);
        if (options.TryGetValue("build_property.RootNamespace", out var root) && !string.IsNullOrWhiteSpace(root)) return new GeneratorOptions(root.Trim() + ".Kernel", isInternal);
        return new GeneratorOptions("KvmTyped.Kernel", isInternal);
    }
}
