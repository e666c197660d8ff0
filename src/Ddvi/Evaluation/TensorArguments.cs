using static TorchSharp.torch;

namespace Ddvi.Evaluation;

/// <summary>Argument checks shared by the metrics, so every metric words its errors the same way.</summary>
internal static class TensorArguments
{
    public static string Shape(Tensor t) => $"[{string.Join(", ", t.shape)}]";

    /// <summary>Requires a non-empty floating-point <c>[rows, columns]</c> tensor.</summary>
    public static void RequireMatrix(string metric, string name, Tensor t)
    {
        if (t.dim() != 2 || t.shape[0] == 0 || t.shape[1] == 0)
            throw new ArgumentException($"{metric}: {name} must be a non-empty [rows, features] tensor, got {Shape(t)}.", name);
        if (!t.is_floating_point())
            throw new ArgumentException($"{metric}: {name} must be floating point, got {t.dtype}.", name);
    }

    /// <summary>Requires an integer <c>[rows]</c> label vector.</summary>
    public static void RequireLabels(string metric, string name, Tensor labels, long rows)
    {
        if (labels.dim() != 1 || labels.shape[0] != rows)
            throw new ArgumentException($"{metric}: {name} must be a [{rows}] label vector, got {Shape(labels)}.", name);
        if (labels.is_floating_point() || labels.is_complex() || labels.dtype == ScalarType.Bool)
            throw new ArgumentException($"{metric}: {name} must hold integer class labels, got {labels.dtype}.", name);
    }

    public static void RequireSameDeviceAndType(string metric, string nameA, Tensor a, string nameB, Tensor b)
    {
        if (a.device_type != b.device_type || a.device_index != b.device_index)
            throw new ArgumentException($"{metric}: {nameA} is on {a.device} but {nameB} is on {b.device}; move both to one device.", nameB);
        if (a.dtype != b.dtype)
            throw new ArgumentException($"{metric}: {nameA} is {a.dtype} but {nameB} is {b.dtype}; convert both to one dtype.", nameB);
    }

    public static void RequirePositive(string metric, string name, long value)
    {
        if (value < 1)
            throw new ArgumentOutOfRangeException(name, value, $"{metric}: {name} must be at least 1.");
    }
}
