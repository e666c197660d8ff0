using System.Collections.Immutable;
using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace Ddvi.Tests.Runtime;

/// <summary>
/// The build's ban lists (src/BannedSymbols.txt, src/BannedSymbols.TorchSharpScalars.txt) against TorchSharp itself: every
/// public TorchSharp method that turns a number into a temporary <c>Scalar</c> (which the garbage collector can free while
/// libtorch reads it; see <c>Ddvi.Runtime.Scalars</c>) must be banned in the library's code. The methods are found in
/// TorchSharp's IL: those that call a conversion to <c>Scalar</c> or <c>ToScalar</c>, then every method that calls one of
/// those, and the methods that return a module whose forward pass is one.
/// </summary>
public class TemporaryScalarBanTests
{
    private static readonly Lazy<IReadOnlySet<string>> Hazardous = new(() => TemporaryScalarScan.Run(typeof(TorchSharp.torch).Assembly.Location));

    private static string RepositoryFile(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Ddvi.slnx"))) return Path.Combine(dir.FullName, relative);
        throw new InvalidOperationException("The repository root (Ddvi.slnx) was not found above the test's folder.");
    }

    // The symbol of each entry, without the description and without a conversion operator's return type.
    private static HashSet<string> Entries(string relative) =>
        File.ReadLines(RepositoryFile(relative))
            .Select(line => line.Trim())
            .Where(line => line.Length > 0 && !line.StartsWith("//", StringComparison.Ordinal))
            .Select(line => line.Split(';')[0].Split('~')[0])
            .ToHashSet(StringComparer.Ordinal);

    [Fact]
    public void EveryTorchSharpMethodThatMakesATemporaryScalarIsBanned()
    {
        var banned = Entries("src/BannedSymbols.txt");
        banned.UnionWith(Entries("src/BannedSymbols.TorchSharpScalars.txt"));
        var missing = Hazardous.Value.Where(id => !banned.Contains(id)).Order(StringComparer.Ordinal).ToList();
        Assert.True(missing.Count == 0,
            $"{missing.Count} TorchSharp methods make temporary Scalars and are not banned; add to src/BannedSymbols.TorchSharpScalars.txt:\n"
            + string.Join("\n", missing.Select(id => id + ";makes a temporary Scalar inside TorchSharp (Ddvi.Runtime.Scalars)")));
    }

    [Fact]
    public void TheGeneratedListNamesOnlyMethodsTheScanFinds()
    {
        var stale = Entries("src/BannedSymbols.TorchSharpScalars.txt").Where(id => !Hazardous.Value.Contains(id)).ToList();
        Assert.True(stale.Count == 0, "Not found by the scan (renamed, or safe since): " + string.Join("\n", stale));
    }

    [Theory]
    [InlineData("M:TorchSharp.torch.Tensor.add(TorchSharp.torch.Tensor)")]               // add(target, 1)
    [InlineData("M:TorchSharp.torch.Tensor.op_Addition(TorchSharp.torch.Tensor,TorchSharp.torch.Tensor)")] // through add(Tensor)
    [InlineData("M:TorchSharp.torch.Tensor.op_Subtraction(TorchSharp.Scalar,TorchSharp.torch.Tensor)")]   // negative().add(s)
    [InlineData("M:TorchSharp.torch.Tensor.square")]                                      // pow(2)
    [InlineData("M:TorchSharp.torch.Tensor.op_Multiply(TorchSharp.torch.Tensor,System.Double)")]
    [InlineData("M:TorchSharp.torch.nn.functional.leaky_relu(TorchSharp.torch.Tensor,System.Double,System.Boolean)")]
    [InlineData("M:TorchSharp.torch.nn.BatchNorm2d(System.Int64,System.Double,System.Double,System.Boolean,System.Boolean,TorchSharp.torch.Device,System.Nullable{TorchSharp.torch.ScalarType})")]
    [InlineData("M:TorchSharp.Modules.Adam.step(System.Func{TorchSharp.torch.Tensor})")]
    public void TheScanFindsTheKnownTemporaries(string id) => Assert.Contains(id, Hazardous.Value);

    [Theory]
    [InlineData("M:TorchSharp.torch.Tensor.add(TorchSharp.torch.Tensor,TorchSharp.Scalar)")]
    [InlineData("M:TorchSharp.torch.Tensor.add_(TorchSharp.torch.Tensor,TorchSharp.Scalar)")]
    [InlineData("M:TorchSharp.torch.Tensor.mul(TorchSharp.Scalar)")]
    [InlineData("M:TorchSharp.torch.Tensor.pow(TorchSharp.Scalar)")]
    [InlineData("M:TorchSharp.torch.Tensor.op_Multiply(TorchSharp.torch.Tensor,TorchSharp.torch.Tensor)")]
    [InlineData("M:TorchSharp.torch.Tensor.op_Subtraction(TorchSharp.torch.Tensor,TorchSharp.torch.Tensor)")]
    [InlineData("M:TorchSharp.torch.nn.Linear(System.Int64,System.Int64,System.Boolean,TorchSharp.torch.Device,System.Nullable{TorchSharp.torch.ScalarType})")]
    public void TheScanSparesMethodsThatPassScalarsTheyAreGiven(string id) => Assert.DoesNotContain(id, Hazardous.Value);
}

/// <summary>The IL scan behind <see cref="TemporaryScalarBanTests"/>: documentation-comment IDs, as the ban lists write them.</summary>
internal static class TemporaryScalarScan
{
    public static IReadOnlySet<string> Run(string assemblyPath)
    {
        using var stream = File.OpenRead(assemblyPath);
        using var pe = new PEReader(stream);
        var md = pe.GetMetadataReader();
        var names = new DocumentationIds(md);

        // Each method's callees, and the methods that convert a number to a Scalar themselves.
        var callees = new Dictionary<MethodDefinitionHandle, List<EntityHandle>>();
        var hazardous = new HashSet<MethodDefinitionHandle>();
        foreach (var typeHandle in md.TypeDefinitions)
            foreach (var methodHandle in md.GetTypeDefinition(typeHandle).GetMethods())
            {
                var method = md.GetMethodDefinition(methodHandle);
                var calls = new List<EntityHandle>();
                callees[methodHandle] = calls;
                if (method.RelativeVirtualAddress == 0) continue;
                var il = pe.GetMethodBody(method.RelativeVirtualAddress).GetILReader();
                while (il.RemainingBytes > 0)
                {
                    var code = ReadOpCode(ref il);
                    if (code is ILOpCode.Call or ILOpCode.Callvirt or ILOpCode.Newobj or ILOpCode.Ldftn or ILOpCode.Ldvirtftn or ILOpCode.Jmp)
                    {
                        var target = MetadataTokens.EntityHandle(il.ReadInt32());
                        calls.Add(target);
                        var (type, name) = names.TypeAndName(target);
                        if (type == "TorchSharp.Scalar" && name == "op_Implicit" || name == "ToScalar") hazardous.Add(methodHandle);
                    }
                    else SkipOperand(ref il, code);
                }
            }

        // Calls within TorchSharp resolve to its own definitions (a method of a generic type is reached through its
        // member reference, matched by name and signature).
        var byKey = callees.Keys.GroupBy(names.Key).ToDictionary(g => g.Key, g => g.ToList());
        bool changed = true;
        while (changed)
        {
            changed = false;
            foreach (var (method, calls) in callees)
            {
                if (hazardous.Contains(method)) continue;
                if (calls.Any(call => Resolve(call).Any(hazardous.Contains)))
                {
                    hazardous.Add(method);
                    changed = true;
                }
            }
        }

        IEnumerable<MethodDefinitionHandle> Resolve(EntityHandle call) => call.Kind switch
        {
            HandleKind.MethodDefinition => [(MethodDefinitionHandle)call],
            HandleKind.MethodSpecification => Resolve(md.GetMethodSpecification((MethodSpecificationHandle)call).Method),
            HandleKind.MemberReference when names.Key(call) is { } key && byKey.TryGetValue(key, out var found) => found,
            _ => [],
        };

        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var method in hazardous)
            if (names.IsPublic(method)) ids.Add(names.Id(method));

        // Modules whose forward pass (the most derived one) is hazardous, and the public methods that make them.
        var modules = new HashSet<string>(StringComparer.Ordinal);
        foreach (var typeHandle in md.TypeDefinitions)
        {
            var type = md.GetTypeDefinition(typeHandle);
            if ((type.Attributes & TypeAttributes.Abstract) != 0 || !names.IsPublic(typeHandle)) continue;
            for (var current = typeHandle; ;)
            {
                var forward = md.GetTypeDefinition(current).GetMethods().FirstOrDefault(m => md.GetString(md.GetMethodDefinition(m).Name) == "forward");
                if (!forward.IsNil)
                {
                    if (hazardous.Contains(forward)) modules.Add(names.TypeName(typeHandle));
                    break;
                }
                var baseType = md.GetTypeDefinition(current).BaseType;
                if (baseType.IsNil || baseType.Kind != HandleKind.TypeDefinition) break;
                current = (TypeDefinitionHandle)baseType;
            }
        }
        foreach (var typeHandle in md.TypeDefinitions)
            foreach (var methodHandle in md.GetTypeDefinition(typeHandle).GetMethods())
                if (names.IsPublic(methodHandle) && modules.Contains(names.ReturnType(methodHandle)))
                    ids.Add(names.Id(methodHandle));
        return ids;
    }

    private static ILOpCode ReadOpCode(ref BlobReader il)
    {
        byte first = il.ReadByte();
        return first == 0xFE ? (ILOpCode)(0xFE00 | il.ReadByte()) : (ILOpCode)first;
    }

    // Operand bytes of each opcode, from the framework's own table (a switch's targets follow its count).
    private static readonly Dictionary<int, int> OperandBytes = typeof(System.Reflection.Emit.OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(field => (System.Reflection.Emit.OpCode)field.GetValue(null)!)
        .ToDictionary(code => (int)(ushort)code.Value, code => code.OperandType switch
        {
            System.Reflection.Emit.OperandType.InlineNone => 0,
            System.Reflection.Emit.OperandType.ShortInlineBrTarget or System.Reflection.Emit.OperandType.ShortInlineI
                or System.Reflection.Emit.OperandType.ShortInlineVar => 1,
            System.Reflection.Emit.OperandType.InlineVar => 2,
            System.Reflection.Emit.OperandType.InlineI8 or System.Reflection.Emit.OperandType.InlineR => 8,
            _ => 4, // tokens, 32-bit constants and branch targets, a switch's count
        });

    private static void SkipOperand(ref BlobReader il, ILOpCode code)
    {
        if (code != ILOpCode.Switch)
        {
            il.Offset += OperandBytes[(int)code];
            return;
        }
        int targets = il.ReadInt32(); // the count, then that many targets
        il.Offset += 4 * targets;
    }

    /// <summary>Names in the documentation-comment ID format (the ban lists' format), and keys that match calls to definitions.</summary>
    private sealed class DocumentationIds(MetadataReader md) : ISignatureTypeProvider<string, object?>
    {
        public bool IsPublic(TypeDefinitionHandle handle)
        {
            var type = md.GetTypeDefinition(handle);
            return (type.Attributes & TypeAttributes.VisibilityMask) switch
            {
                TypeAttributes.Public => true,
                TypeAttributes.NestedPublic or TypeAttributes.NestedFamily or TypeAttributes.NestedFamORAssem => IsPublic(type.GetDeclaringType()),
                _ => false,
            };
        }

        public bool IsPublic(MethodDefinitionHandle handle)
        {
            var method = md.GetMethodDefinition(handle);
            var access = method.Attributes & MethodAttributes.MemberAccessMask;
            return access is MethodAttributes.Public or MethodAttributes.Family or MethodAttributes.FamORAssem && IsPublic(method.GetDeclaringType());
        }

        public string TypeName(TypeDefinitionHandle handle)
        {
            var type = md.GetTypeDefinition(handle);
            string name = md.GetString(type.Name);
            if (type.IsNested) return TypeName(type.GetDeclaringType()) + "." + name;
            string space = md.GetString(type.Namespace);
            return space.Length > 0 ? space + "." + name : name;
        }

        private string TypeName(TypeReferenceHandle handle)
        {
            var type = md.GetTypeReference(handle);
            string name = md.GetString(type.Name);
            if (type.ResolutionScope.Kind == HandleKind.TypeReference) return TypeName((TypeReferenceHandle)type.ResolutionScope) + "." + name;
            string space = md.GetString(type.Namespace);
            return space.Length > 0 ? space + "." + name : name;
        }

        private string ParentName(EntityHandle parent) => parent.Kind switch
        {
            HandleKind.TypeDefinition => TypeName((TypeDefinitionHandle)parent),
            HandleKind.TypeReference => TypeName((TypeReferenceHandle)parent),
            HandleKind.TypeSpecification => GenericTypeName(md.GetTypeSpecification((TypeSpecificationHandle)parent).DecodeSignature(this, null)),
            _ => "?",
        };

        // "N.T{A,B{C,D}}" → "N.T`2": the generic type a member reference on an instantiation belongs to.
        private static string GenericTypeName(string instantiation)
        {
            int open = instantiation.IndexOf('{');
            if (open < 0) return instantiation;
            int depth = 0, arguments = 1;
            foreach (char c in instantiation[open..])
            {
                if (c == '{') depth++;
                else if (c == '}') depth--;
                else if (c == ',' && depth == 1) arguments++;
            }
            return instantiation[..open] + "`" + arguments;
        }

        public (string Type, string Name) TypeAndName(EntityHandle handle)
        {
            switch (handle.Kind)
            {
                case HandleKind.MethodDefinition:
                    var method = md.GetMethodDefinition((MethodDefinitionHandle)handle);
                    return (TypeName(method.GetDeclaringType()), md.GetString(method.Name));
                case HandleKind.MemberReference:
                    var member = md.GetMemberReference((MemberReferenceHandle)handle);
                    return (ParentName(member.Parent), md.GetString(member.Name));
                case HandleKind.MethodSpecification:
                    return TypeAndName(md.GetMethodSpecification((MethodSpecificationHandle)handle).Method);
                default:
                    return ("", "");
            }
        }

        /// <summary>Declaring type, name and parameter types: the same for a definition and the references that call it.</summary>
        public string? Key(EntityHandle handle)
        {
            switch (handle.Kind)
            {
                case HandleKind.MethodDefinition:
                    return Key((MethodDefinitionHandle)handle);
                case HandleKind.MemberReference:
                    var member = md.GetMemberReference((MemberReferenceHandle)handle);
                    if (member.GetKind() != MemberReferenceKind.Method) return null;
                    var signature = member.DecodeMethodSignature(this, null);
                    return ParentName(member.Parent) + "." + md.GetString(member.Name) + "(" + string.Join(",", signature.ParameterTypes) + ")";
                default:
                    return null;
            }
        }

        public string Key(MethodDefinitionHandle handle)
        {
            var method = md.GetMethodDefinition(handle);
            var signature = method.DecodeSignature(this, null);
            return TypeName(method.GetDeclaringType()) + "." + md.GetString(method.Name) + "(" + string.Join(",", signature.ParameterTypes) + ")";
        }

        public string ReturnType(MethodDefinitionHandle handle) => md.GetMethodDefinition(handle).DecodeSignature(this, null).ReturnType;

        public string Id(MethodDefinitionHandle handle)
        {
            var method = md.GetMethodDefinition(handle);
            var signature = method.DecodeSignature(this, null);
            string name = md.GetString(method.Name).Replace('.', '#');
            int generic = method.GetGenericParameters().Count;
            return "M:" + TypeName(method.GetDeclaringType()) + "." + name + (generic > 0 ? "``" + generic : "")
                + (signature.ParameterTypes.Length > 0 ? "(" + string.Join(",", signature.ParameterTypes) + ")" : "");
        }

        public string GetArrayType(string element, ArrayShape shape) => element + "[" + string.Join(",", Enumerable.Repeat("0:", shape.Rank)) + "]";
        public string GetByReferenceType(string element) => element + "@";
        public string GetFunctionPointerType(MethodSignature<string> signature) => "=FUNC";
        public string GetGenericInstantiation(string generic, ImmutableArray<string> arguments) =>
            generic[..generic.LastIndexOf('`')] + "{" + string.Join(",", arguments) + "}";
        public string GetGenericMethodParameter(object? context, int index) => "``" + index;
        public string GetGenericTypeParameter(object? context, int index) => "`" + index;
        public string GetModifiedType(string modifier, string unmodified, bool isRequired) => unmodified;
        public string GetPinnedType(string element) => element;
        public string GetPointerType(string element) => element + "*";
        public string GetPrimitiveType(PrimitiveTypeCode code) => "System." + code; // Int32, Single, IntPtr, …: the framework's names
        public string GetSZArrayType(string element) => element + "[]";
        public string GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind) => TypeName(handle);
        public string GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind) => TypeName(handle);
        public string GetTypeFromSpecification(MetadataReader reader, object? context, TypeSpecificationHandle handle, byte rawTypeKind) =>
            md.GetTypeSpecification(handle).DecodeSignature(this, context);
    }
}
