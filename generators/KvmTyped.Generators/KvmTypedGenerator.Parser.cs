using System.Collections.Generic;
using System.Linq;
using System.Threading;
using KvmTyped.Generators.Schema;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace KvmTyped.Generators;

/// <summary>The C# front end: a [KernelStruct] partial struct and its partial get-only properties become the same
/// <see cref="StructDef"/> a C schema declaring that struct would give.</summary>
public sealed partial class KvmTypedGenerator
{
    private const string TypesNamespace = "KvmTyped.Types";

    /// <summary>The attribute that marks a member (or struct) only some kernels have.</summary>
    private const string KernelOptionalAttribute = "KvmTyped.Types.KernelOptionalAttribute";

    /// <summary>How a declared property type is compared with the generated one: names without namespaces or
    /// containing types, C# keywords for special types (<c>KPtr&lt;task_struct&gt;</c>, <c>KArray&lt;int&gt;</c>). A struct
    /// generated from a C schema is not yet a type when the generator runs, so only its name can be compared.</summary>
    private static readonly SymbolDisplayFormat ShapeFormat = new(
        typeQualificationStyle: SymbolDisplayTypeQualificationStyle.NameOnly,
        genericsOptions: SymbolDisplayGenericsOptions.IncludeTypeParameters,
        miscellaneousOptions: SymbolDisplayMiscellaneousOptions.UseSpecialTypes);

    /// <summary>A declared property's type as the stub part repeats it: fully qualified, nullable annotations kept.</summary>
    private static readonly SymbolDisplayFormat StubTypeFormat = SymbolDisplayFormat.FullyQualifiedFormat
        .AddMiscellaneousOptions(SymbolDisplayMiscellaneousOptions.IncludeNullableReferenceTypeModifier);

    /// <summary>True for the syntax the attribute may sit on that this front end looks at: a struct or a record struct
    /// (refused with a diagnostic, not ignored).</summary>
    internal static bool IsStructSyntax(SyntaxNode node) => node is StructDeclarationSyntax || node.IsKind(SyntaxKind.RecordStructDeclaration);

    internal static SchemaUnit ParseCSharp(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        var node = (TypeDeclarationSyntax)context.TargetNode;
        var symbol = (INamedTypeSymbol)context.TargetSymbol;
        var path = node.SyntaxTree.FilePath;
        var diagnostics = new List<SchemaDiagnostic>();
        var enums = new List<EnumDef>();
        var structPos = PosOf(node.Identifier.GetLocation(), path);
        void Unsupported(string what, SourcePos at) => diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.Unsupported, "unsupported construct: " + what, at));

        if (!node.Modifiers.Any(SyntaxKind.PartialKeyword)) Unsupported("[KernelStruct] type '" + symbol.Name + "' must be a partial struct", structPos);
        if (node.IsKind(SyntaxKind.RecordStructDeclaration)) Unsupported("[KernelStruct] type '" + symbol.Name + "' must be a plain partial struct, not a record struct", structPos);
        if (symbol.ContainingType is not null)
        {
            Unsupported("[KernelStruct] type '" + symbol.Name + "' must not be nested in another type (declare it in a namespace, or in none)", structPos);
        }
        if (symbol.IsGenericType) Unsupported("[KernelStruct] type '" + symbol.Name + "' must not be generic", structPos);

        var attribute = context.Attributes[0];
        bool Flag(string name) => attribute.NamedArguments.Any(a => a.Key == name && a.Value.Value is true);
        var aligned = attribute.NamedArguments.Where(a => a.Key == "Aligned").Select(a => a.Value.Value is int i ? i : 0).FirstOrDefault();
        var fields = new List<FieldDef>();
        foreach (var member in node.Members)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (member is not PropertyDeclarationSyntax property || !property.Modifiers.Any(SyntaxKind.PartialKeyword)) continue;
            if (property.AccessorList is null || property.AccessorList.Accessors.Any(a => a.Body is not null || a.ExpressionBody is not null)) continue;
            var pos = PosOf(property.Identifier.GetLocation(), path);
            if (context.SemanticModel.GetDeclaredSymbol(property, cancellationToken) is not IPropertySymbol prop) continue;
            if (property.AccessorList.Accessors.Count != 1 || !property.AccessorList.Accessors[0].IsKind(SyntaxKind.GetAccessorDeclaration))
            {
                Unsupported("property '" + prop.Name + "' must have only a get accessor (views are read-only)", pos);
                continue;
            }
            if (prop.IsStatic)
            {
                Unsupported("property '" + prop.Name + "' must not be static (a member is read from a struct in kernel memory)", pos);
                continue;
            }
            if (prop.DeclaredAccessibility != Accessibility.Public)
            {
                Unsupported("property '" + prop.Name + "' must be public (views implement their members as public properties)", pos);
                continue;
            }
            var field = MapProperty(prop, pos, diagnostics, enums);
            if (field is not null) fields.Add(field with { DeclaredClrType = Shape(prop.Type) });
        }
        var optionalStruct = symbol.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == KernelOptionalAttribute);
        var clrNamespace = symbol.ContainingNamespace.IsGlobalNamespace ? string.Empty : symbol.ContainingNamespace.ToDisplayString();
        if (aligned < 0 || (aligned & (aligned - 1)) != 0)
        {
            diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.SyntaxError, "requested alignment " + aligned.ToString(System.Globalization.CultureInfo.InvariantCulture) + " is not a power of 2", structPos));
        }
        var def = new StructDef(symbol.Name, Flag("Union"), (Flag("Union") ? "union " : "struct ") + symbol.Name, Flag("Packed"), aligned,
            Flag("PreserveAccessIndex"), false, fields.ToEquatableArray(), structPos, clrNamespace, Optional: optionalStruct,
            Rejected: diagnostics.Count > 0, Stub: EmitStub(node, symbol, cancellationToken));
        return new SchemaUnit(path, new EquatableArray<StructDef>(new[] { def }), enums.ToEquatableArray(), EquatableArray<TypedefDef>.Empty, diagnostics.ToEquatableArray());
    }

    /// <summary>A type's shape as compared with the generated property's (see <see cref="ShapeFormat"/>).</summary>
    internal static string Shape(ITypeSymbol type) => type.ToDisplayString(ShapeFormat).Replace("@", string.Empty);

    /// <summary>The part that gives every partial property of a refused declaration a body that throws, so that the
    /// KVMT diagnostic is the only error of the build; null when the struct, or a type that contains it, is not partial
    /// (another part of it cannot be written then).</summary>
    private static string? EmitStub(TypeDeclarationSyntax node, INamedTypeSymbol symbol, CancellationToken cancellationToken)
    {
        var chain = new List<TypeDeclarationSyntax>();
        for (SyntaxNode? n = node; n is not null; n = n.Parent)
        {
            if (n is TypeDeclarationSyntax t)
            {
                if (!t.Modifiers.Any(SyntaxKind.PartialKeyword)) return null;
                chain.Add(t);
            }
        }
        chain.Reverse();
        var w = new Helpers.SourceWriter();
        w.Line("// <auto-generated/>");
        w.Line("// The generator refused this [KernelStruct] declaration (see its KVMT diagnostics): its properties throw.");
        w.Line("#nullable enable");
        w.Line("#pragma warning disable CS8981 // kernel type names are lower-case C names");
        w.Line();
        if (!symbol.ContainingNamespace.IsGlobalNamespace) w.Line("namespace " + symbol.ContainingNamespace.ToDisplayString() + ";");
        w.Line();
        const string Throw = " => throw new global::System.NotSupportedException(\"this [KernelStruct] declaration was refused: see its KVMT diagnostics\");";
        const string View = "global::KvmTyped.Types.IKernelView<";
        foreach (var t in chain)
        {
            var keyword = t is RecordDeclarationSyntax r
                ? "record" + (r.ClassOrStructKeyword.IsKind(SyntaxKind.None) ? string.Empty : " " + r.ClassOrStructKeyword.ValueText)
                : t.Keyword.ValueText;
            var parameters = t.TypeParameterList is null ? string.Empty : "<" + string.Join(", ", t.TypeParameterList.Parameters.Select(p => p.Identifier.Text)) + ">";
            var self = t.Identifier.Text + parameters;
            if (t != node)
            {
                w.Open("partial " + keyword + " " + self);
                continue;
            }
            // The refused struct is still a view to the compiler, so that KPtr<it> in other declarations compiles.
            w.Open("partial " + keyword + " " + self + " : " + View + self + ">");
            w.Line("ulong " + View + self + ">.Address" + Throw);
            w.Line("global::KvmTyped.Types.IKernelMemory " + View + self + ">.Memory" + Throw);
            w.Line("static string " + View + self + ">.TypeName" + Throw);
            w.Line("static bool " + View + self + ">.IsRelocated" + Throw);
            w.Line("static " + self + " " + View + self + ">.At(global::KvmTyped.Types.IKernelMemory memory, ulong address)" + Throw);
            w.Line("static ulong " + View + self + ">.SizeOf(global::KvmTyped.Types.IKernelMemory memory)" + Throw);
            w.Line("static ulong " + View + self + ">.OffsetOf(global::KvmTyped.Types.IKernelMemory memory, string member)" + Throw);
            w.Line("static global::KvmTyped.Types.KernelStructLayout? " + View + self + ">.StaticLayout(global::KvmTyped.DataModel model)" + Throw);
        }
        foreach (var member in node.Members)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (member is not PropertyDeclarationSyntax property || !property.Modifiers.Any(SyntaxKind.PartialKeyword)) continue;
            if (property.AccessorList is null || property.AccessorList.Accessors.Any(a => a.Body is not null || a.ExpressionBody is not null)) continue;
            var prop = symbol.GetMembers(property.Identifier.ValueText).OfType<IPropertySymbol>().FirstOrDefault();
            if (prop is null) continue;
            var accessors = string.Join(" ", property.AccessorList.Accessors.Select(a =>
                (a.Modifiers.Count > 0 ? a.Modifiers.ToString() + " " : string.Empty) + a.Keyword.ValueText + Throw));
            w.Line(property.Modifiers.ToString() + " " + prop.Type.ToDisplayString(StubTypeFormat) + " " + property.Identifier.Text + " { " + accessors + " }");
        }
        foreach (var _ in chain) w.Close();
        return w.ToString();
    }

    private static SourcePos PosOf(Location location, string path)
    {
        var span = location.GetLineSpan();
        return new SourcePos(path, span.StartLinePosition.Line + 1, span.StartLinePosition.Character + 1, System.Math.Max(1, location.SourceSpan.Length));
    }

    private static FieldDef? MapProperty(IPropertySymbol prop, SourcePos pos, List<SchemaDiagnostic> diagnostics, List<EnumDef> enums)
    {
        int[]? lengths = null;
        var width = -1;
        string? cType = null;
        var optional = false;
        foreach (var a in prop.GetAttributes())
        {
            var cls = a.AttributeClass;
            if (cls is null || cls.ContainingNamespace.ToDisplayString() != TypesNamespace) continue;
            switch (cls.Name)
            {
                case "KernelArrayAttribute":
                    lengths = a.ConstructorArguments.Length == 1 && a.ConstructorArguments[0].Kind == TypedConstantKind.Array
                        ? a.ConstructorArguments[0].Values.Select(v => v.Value is int i ? i : 0).ToArray()
                        : a.ConstructorArguments.Select(v => v.Value is int i ? i : 0).ToArray();
                    break;
                case "KernelBitsAttribute":
                    width = a.ConstructorArguments.Length == 1 && a.ConstructorArguments[0].Value is int w ? w : -1;
                    break;
                case "KernelTypeAttribute":
                    cType = a.ConstructorArguments.Length == 1 ? a.ConstructorArguments[0].Value as string : null;
                    break;
                case "KernelOptionalAttribute":
                    optional = true;
                    break;
            }
        }

        CType? type;
        if (cType is not null)
        {
            var unit = SchemaParser.Parse(pos.File, "struct __kvmt_type { " + cType + " __kvmt_member; };");
            if (unit.Diagnostics.Count > 0 || unit.Structs.Count != 1 || unit.Structs[0].Fields.Count != 1)
            {
                diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.SyntaxError, "[KernelType(\"" + cType + "\")] on '" + prop.Name + "' is not a C type", pos));
                return null;
            }
            type = unit.Structs[0].Fields[0].Type;
            if (lengths is not null && type.Kind == CTypeKind.Array) type = ArrayElement(type);
        }
        else
        {
            type = MapType(prop.Type, enums);
        }
        if (type is null)
        {
            diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.Unsupported, "unsupported construct: property '" + prop.Name + "' has type " + prop.Type.ToDisplayString() + ", which has no C equivalent (use [KernelType])", pos));
            return null;
        }
        if (prop.Type.SpecialType == SpecialType.System_String && lengths is null && type.Kind != CTypeKind.Array)
        {
            diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.Unsupported, "unsupported construct: string property '" + prop.Name + "' needs [KernelArray(N)] (it is a char array)", pos));
            return null;
        }
        if (lengths is not null)
        {
            if (lengths.Length == 0)
            {
                type = new CType(CTypeKind.Array, Target: type, Length: -1);
            }
            for (var i = lengths.Length - 1; i >= 0; i--)
            {
                if (lengths[i] <= 0)
                {
                    diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.BadArraySize, "array '" + prop.Name + "' has size " + lengths[i].ToString(System.Globalization.CultureInfo.InvariantCulture) + "; sizes must be positive (use [KernelArray] for a flexible array member)", pos));
                    return null;
                }
                type = new CType(CTypeKind.Array, Target: type, Length: lengths[i]);
            }
        }
        return new FieldDef(prop.Name, type, width, 0, false, pos, optional);
    }

    private static CType ArrayElement(CType t)
    {
        while (t.Kind == CTypeKind.Array) t = t.Target!;
        return t;
    }

    private static CType? MapType(ITypeSymbol type, List<EnumDef> enums)
    {
        switch (type.SpecialType)
        {
            case SpecialType.System_Boolean: return new CType(CTypeKind.Bool);
            case SpecialType.System_SByte: return new CType(CTypeKind.SChar);
            case SpecialType.System_Byte: return new CType(CTypeKind.UChar);
            case SpecialType.System_Int16: return new CType(CTypeKind.Short);
            case SpecialType.System_UInt16: return new CType(CTypeKind.UShort);
            case SpecialType.System_Int32: return new CType(CTypeKind.Int);
            case SpecialType.System_UInt32: return new CType(CTypeKind.UInt);
            case SpecialType.System_Int64: return new CType(CTypeKind.LongLong);
            case SpecialType.System_UInt64: return new CType(CTypeKind.ULongLong);
            case SpecialType.System_Single: return new CType(CTypeKind.Float);
            case SpecialType.System_Double: return new CType(CTypeKind.Double);
            case SpecialType.System_String: return new CType(CTypeKind.Char);
        }
        if (type.TypeKind == TypeKind.Enum && type is INamedTypeSymbol e)
        {
            var members = e.GetMembers().OfType<IFieldSymbol>().Where(f => f.HasConstantValue)
                .Select(f => new EnumMember(f.Name, System.Convert.ToInt64(f.ConstantValue, System.Globalization.CultureInfo.InvariantCulture))).ToArray();
            var location = e.Locations.FirstOrDefault();
            var pos = location is not null && location.IsInSource ? PosOf(location, location.SourceTree!.FilePath) : new SourcePos(e.ToDisplayString(), 1, 1);
            enums.Add(new EnumDef(e.Name, false, new EquatableArray<EnumMember>(members), pos, e.ContainingNamespace.ToDisplayString()));
            return new CType(CTypeKind.Enum, e.Name);
        }
        if (type is INamedTypeSymbol named && named.IsGenericType && named.TypeArguments.Length == 1 && named.ContainingNamespace?.ToDisplayString() == TypesNamespace)
        {
            var argument = named.TypeArguments[0];
            switch (named.Name)
            {
                case "KPtr": return new CType(CTypeKind.Pointer, Target: RecordOf(argument));
                case "KViewArray": return RecordOf(argument);
                case "KArray": return MapType(argument, enums);
            }
            return null;
        }
        if (type.TypeKind == TypeKind.Error || type.TypeKind == TypeKind.Struct && type.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == KernelStructAttribute))
        {
            return RecordOf(type);
        }
        return null;
    }

    private static CType RecordOf(ITypeSymbol type)
    {
        var isUnion = type.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == KernelStructAttribute
            && a.NamedArguments.Any(n => n.Key == "Union" && n.Value.Value is true));
        return new CType(isUnion ? CTypeKind.Union : CTypeKind.Struct, type.Name);
    }
}
