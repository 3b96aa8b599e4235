using System;
using System.Collections.Generic;
using System.Threading;
using KvmTyped.Generators.Helpers;
using KvmTyped.Generators.Schema;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace KvmTyped.Generators;

/// <summary>One kernel digest read: the digest, or why it could not be.</summary>
internal sealed record DigestResult(KernelDigest? Digest, SchemaDiagnostic? Error);

/// <summary>The kernel check's settings: off (<c>KvmTypedKernelCheckSeverity=none</c>), or the severity its findings get.</summary>
internal sealed record KernelCheckOptions(bool Enabled, DiagnosticSeverity Severity);

/// <summary>A target kernel as the generated list names it.</summary>
internal sealed record TargetKernel(string Release, string Machine);

/// <summary>The target kernels and the namespace their list goes to.</summary>
internal sealed record TargetKernelList(string Namespace, EquatableArray<TargetKernel> Kernels);

/// <summary>A digest's text as the compiler holds it: read in blocks, never copied whole into one string (a kernel's
/// digest is about a megabyte, and most of it is never looked at).</summary>
internal sealed class SourceTextDigest : DigestSource
{
    private readonly Microsoft.CodeAnalysis.Text.SourceText _text;

    public SourceTextDigest(Microsoft.CodeAnalysis.Text.SourceText text) => _text = text;

    public override int Length => _text.Length;

    public override void CopyTo(int sourceIndex, char[] destination, int destinationIndex, int count) => _text.CopyTo(sourceIndex, destination, destinationIndex, count);

    public override string ToString(int start, int length) => _text.ToString(new Microsoft.CodeAnalysis.Text.TextSpan(start, length));
}

/// <summary>The build-time check against the project's target kernels: digests in, findings out.</summary>
public sealed partial class KvmTypedGenerator
{
    /// <summary>A digest is an AdditionalFiles item whose KvmTypedKernelDigest metadata is true (the targets' digest step
    /// adds it for each KvmTypedKernel item).</summary>
    private static bool IsKernelDigest(AdditionalText text, AnalyzerConfigOptions options) =>
        options.TryGetValue("build_metadata.AdditionalFiles.KvmTypedKernelDigest", out var flag)
        && string.Equals(flag, "true", StringComparison.OrdinalIgnoreCase)
        && text.Path.Length > 0;

    internal static DigestResult LoadDigest(AdditionalText text, CancellationToken cancellationToken)
    {
        var content = text.GetText(cancellationToken);
        if (content is null)
        {
            return new DigestResult(null, new SchemaDiagnostic(KernelDiagnosticIds.BadDigest, "kernel digest " + text.Path + " cannot be read", new SourcePos(text.Path, 0, 0)));
        }
        try
        {
            return new DigestResult(KernelDigest.Parse(text.Path, new SourceTextDigest(content)), null);
        }
        catch (FormatException e)
        {
            return new DigestResult(null, new SchemaDiagnostic(KernelDiagnosticIds.BadDigest, "kernel digest unreadable, so no kernel was checked against it: " + e.Message, new SourcePos(text.Path, 0, 0)));
        }
    }

    /// <summary>KvmTypedKernelCheckSeverity: warning (the default), error, info, hidden, or none (no check).</summary>
    private static KernelCheckOptions KernelCheckSeverity(AnalyzerConfigOptions options)
    {
        options.TryGetValue("build_property.KvmTypedKernelCheckSeverity", out var value);
        return (value ?? string.Empty).Trim().ToLowerInvariant() switch
        {
            "none" or "off" => new KernelCheckOptions(false, DiagnosticSeverity.Hidden),
            "error" => new KernelCheckOptions(true, DiagnosticSeverity.Error),
            "info" or "suggestion" => new KernelCheckOptions(true, DiagnosticSeverity.Info),
            "hidden" or "silent" => new KernelCheckOptions(true, DiagnosticSeverity.Hidden),
            _ => new KernelCheckOptions(true, DiagnosticSeverity.Warning),
        };
    }

    internal static KernelFindings CheckKernel(DigestResult digest, KernelCheckModel model, KernelCheckOptions options, CancellationToken cancellationToken)
    {
        if (!options.Enabled) return KernelFindings.None;
        if (digest.Error is { } error) return KernelFindings.None with { Findings = new EquatableArray<SchemaDiagnostic>(new[] { error }) };
        cancellationToken.ThrowIfCancellationRequested();
        try
        {
            return KernelChecker.Check(model, digest.Digest!);
        }
        catch (FormatException e)
        {
            return KernelFindings.None with
            {
                Findings = new EquatableArray<SchemaDiagnostic>(new[]
                {
                    new SchemaDiagnostic(KernelDiagnosticIds.BadDigest, "kernel digest unreadable, so no kernel was checked against it: " + e.Message, new SourcePos(digest.Digest!.Path, 0, 0)),
                }),
            };
        }
    }

    /// <summary>KvmTypedTargetKernels: the kernels the project was checked against, for tools that want to say so (or to
    /// warn when they open a kernel outside the list).</summary>
    internal static string EmitTargetKernels(TargetKernelList list)
    {
        static string Literal(string s) => "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\r", "\\r").Replace("\n", "\\n") + "\"";
        var releases = new List<string>();
        var machines = new List<string>();
        foreach (var k in list.Kernels)
        {
            releases.Add(Literal(k.Release));
            machines.Add(Literal(k.Machine));
        }
        var w = new SourceWriter();
        w.Line("// <auto-generated/>");
        w.Line("#nullable enable");
        w.Line();
        w.Line("namespace " + list.Namespace + ";");
        w.Line();
        w.Line("/// <summary>The kernels this project's structs were checked against when it was built (its KvmTypedKernel items).</summary>");
        w.Open("internal static class KvmTypedTargetKernels");
        w.Line("/// <summary>Each kernel's release, in the order the project lists them.</summary>");
        w.Line("public static global::System.Collections.Generic.IReadOnlyList<string> Releases { get; } = new string[] { " + string.Join(", ", releases) + " };");
        w.Line();
        w.Line("/// <summary>Each kernel's machine (x86_64, i386, aarch64, …), in the same order.</summary>");
        w.Line("public static global::System.Collections.Generic.IReadOnlyList<string> Machines { get; } = new string[] { " + string.Join(", ", machines) + " };");
        w.Close();
        return w.ToString();
    }
}
