using static TorchSharp.torch;

namespace Ddvi.Objectives;

/// <summary>
/// What an objective returns: the scalar to minimise and its named parts (each a scalar tensor that
/// still carries its graph; the trainer detaches them for logging). Names become log and CSV columns.
/// </summary>
public sealed record LossTerms(Tensor Total, IReadOnlyList<(string Name, Tensor Value)> Terms);
