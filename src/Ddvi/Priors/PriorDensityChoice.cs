namespace Ddvi.Priors;

/// <summary>Which log p(z) a prior gives to training and to the ELBO (<c>--prior-density</c>).</summary>
public enum PriorDensityChoice
{
    /// <summary>
    /// The release's KDE for the structured priors (pinwheel, swiss roll, square) and the exact density for the Gaussian
    /// and the Gaussian mixture. The exact pinwheel density is not used by default because its arms are so thin
    /// (std 0.005) that its gradient pulls latents into the origin, where all arms meet (README, Priors).
    /// </summary>
    Auto,

    /// <summary>The closed-form density; an error for priors without one (swiss roll, square).</summary>
    Exact,

    /// <summary>The release's KDE over 10,000 prior samples for every prior.</summary>
    Kde,
}
