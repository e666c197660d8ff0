using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Objectives;

/// <summary>
/// How the semi-supervised models of the authors' release (arXiv:2401.02739; <c>diff_vae_semi</c>, <c>vae_semi</c>,
/// <c>iaf_vae_semi</c>, <c>aae_semi</c>) use a partly labelled batch. Labels are int64 <c>[B]</c>, an unlabelled example holding a
/// negative value. A term that depends on the class, L_c(x), enters as Σ_c w_c(x) L_c(x) with w the one-hot of the label
/// for a labelled example and q(c|x) for an unlabelled one; the batch term is the mean over the labelled examples plus
/// the mean over the unlabelled ones (each 0 when the batch has none), as the release normalises it. Everything stays on
/// the device: no host reads.
/// </summary>
public static class SemiSupervision
{
    /// <summary>1 for a labelled example, 0 otherwise: <c>[B]</c> float of <paramref name="like"/>'s type.</summary>
    public static Tensor LabelledMask(Tensor labels, Tensor like) => labels.ge(Scalars.Of(0)).to(like.dtype);

    /// <summary>w <c>[B, C]</c>: one-hot(label) where labelled, softmax(logits) where not. Gradient reaches the logits
    /// through the unlabelled rows.</summary>
    public static Tensor ClassWeights(Tensor logits, Tensor labels) // [B, C], [B] → [B, C]
    {
        using var scope = NewDisposeScope();
        long classes = logits.shape[1];
        var labelled = labels.ge(Scalars.Of(0)).unsqueeze(1);                                                // [B, 1]
        var oneHot = nn.functional.one_hot(labels.clamp_min(Scalars.Of(0)), classes).to(logits.dtype);     // [B, C]
        return where(labelled, oneHot, nn.functional.softmax(logits, 1)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The batch value of a class-dependent term: per-class values <c>[C, B]</c> (row c = L_c of each example), weights
    /// <c>[B, C]</c> from <see cref="ClassWeights"/> → mean over labelled of Σ_c w L + mean over unlabelled of Σ_c w L (a scalar).
    /// </summary>
    public static Tensor Combine(Tensor perClass, Tensor weights, Tensor labels)
    {
        using var scope = NewDisposeScope();
        var perExample = (weights * perClass.t()).sum(1);                                        // [B]
        return GroupMeans(perExample, labels).MoveToOuterDisposeScope();
    }

    /// <summary>Mean over the labelled rows of <paramref name="perExample"/> plus the mean over the unlabelled rows (each 0 when empty).</summary>
    public static Tensor GroupMeans(Tensor perExample, Tensor labels)
    {
        using var scope = NewDisposeScope();
        var labelled = LabelledMask(labels, perExample);
        var unlabelled = labelled.neg().add(Scalars.Of(1), Scalars.One);
        var total = ((perExample * labelled).sum() / labelled.sum().clamp_min(Scalars.Of(1)))
            .add((perExample * unlabelled).sum() / unlabelled.sum().clamp_min(Scalars.Of(1)), Scalars.One);
        return total.MoveToOuterDisposeScope();
    }

    /// <summary>The mean over unlabelled examples of the entropy H(q(c|x)) = −Σ_c q log q (≥ 0; 0 when all are labelled).
    /// The release adds 0.001 × this to the loss it minimises, so predictions on unlabelled data grow confident.</summary>
    public static Tensor Entropy(Tensor logits, Tensor labels)
    {
        using var scope = NewDisposeScope();
        var logQ = nn.functional.log_softmax(logits, 1);
        var entropy = -(logQ.exp() * logQ).sum(1);                                              // [B]
        var unlabelled = LabelledMask(labels, entropy).neg().add(Scalars.Of(1), Scalars.One);
        return ((entropy * unlabelled).sum() / unlabelled.sum().clamp_min(Scalars.Of(1))).MoveToOuterDisposeScope();
    }

    /// <summary>The mean over labelled examples of −log q(label | x) (0 when none is labelled).</summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor labels)
    {
        using var scope = NewDisposeScope();
        var logQ = nn.functional.log_softmax(logits, 1);
        var picked = -logQ.gather(1, labels.clamp_min(Scalars.Of(0)).unsqueeze(1)).squeeze(1);            // [B]
        var labelled = LabelledMask(labels, picked);
        return ((picked * labelled).sum() / labelled.sum().clamp_min(Scalars.Of(1))).MoveToOuterDisposeScope();
    }
}
