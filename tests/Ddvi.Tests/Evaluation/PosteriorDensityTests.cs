using Ddvi.Diffusion;
using Ddvi.Evaluation;
using Ddvi.Flows;
using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Priors;
using Ddvi.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Evaluation;

/// <summary>
/// log q(z|x) of every model with a posterior density: DDVI's change of variables against a finite-difference Jacobian
/// and against normalisation, the baselines against the draws their ELBOs use.
/// </summary>
public class PosteriorDensityTests
{
    private const int InputDim = 8;

    private static Tensor Data(int rows, long seed, ScalarType dtype = ScalarType.Float32) =>
        rand([rows, InputDim], dtype: dtype, generator: new Generator((ulong)seed));

    private static DdviModel SmallDdvi(long seed)
    {
        manual_seed(seed);
        var model = DdviModel.Paper(inputDim: InputDim, hidden: 16, priorSteps: 4, posteriorSteps: 6, denoiserHidden: 16);
        model.eval();
        return model;
    }

    [Fact]
    public void LogDeterminantOfALinearMapIsLogAbsDetWithItsSign()
    {
        using var scope = NewDisposeScope();
        var a = tensor(new double[] { 1.5, 0.3, -0.2, 2.0, 1.0, 0.4, 0.1, -0.7, 0.9 }, [3, 3], dtype: float64);
        a[0] = -a[0]; // a negative determinant
        var u = randn([5, 3], dtype: float64, generator: new Generator(1));
        var result = ChangeOfVariables.LogAbsDetJacobian(v => v.matmul(a.t()), u);
        var (sign, logAbs) = linalg.slogdet(a);
        Assert.True(result.Output.allclose(u.matmul(a.t())));
        Assert.True((result.LogAbsDet - logAbs).abs().max().item<double>() < 1e-12);
        Assert.Equal(-1.0, sign.item<double>());
        Assert.True(result.Sign.eq(-1).all().item<bool>());
        Assert.False(result.Output.requires_grad);

        Assert.Contains("[B, d]", Assert.Throws<ArgumentException>(() => ChangeOfVariables.LogAbsDetJacobian(v => v, u[0])).Message);
        Assert.Contains("keep the shape", Assert.Throws<ArgumentException>(() => ChangeOfVariables.LogAbsDetJacobian(v => v.sum(1, keepdim: true), u)).Message);
    }

    [Fact]
    public void DdviChainLogDeterminantMatchesAFiniteDifferenceJacobian()
    {
        using var model = SmallDdvi(seed: 3);
        model.to(float64);
        using var scope = NewDisposeScope();
        var x = Data(3, seed: 4, float64);
        const int samples = 4;
        using var noGrad = no_grad();
        var draws = model.DrawWithLogDensity(x, samples, new Generator(5));
        Assert.Equal(new long[] { samples, 3, 2 }, draws.Z.shape);
        Assert.Equal(new long[] { samples, 3 }, draws.LogQ.shape);

        // Replay the draw: the only random numbers are y_T's noise ε [K·B, d] (eval mode: no dropout).
        var epsilon = RandomDraws.Normal([samples * 3, 2], float64, CPU, new Generator(5));
        var (mean, logVariance) = model.Encode(x);
        var meanK = mean.repeat(samples, 1);
        var logVarianceK = logVariance.repeat(samples, 1);
        var yT = meanK + (0.5 * logVarianceK).exp() * epsilon;                                          // [K·B, d]
        var context = model.AuxiliaryEncoder.call(x).repeat(samples, 1);
        Tensor Chain(Tensor y) => ReverseChain.Run((v, t) => model.PosteriorDenoiser.call(v, context, t), y, model.PosteriorSchedule).Z;

        AssertLogQOfAChain(Chain, yT, epsilon, logVarianceK, draws);
    }

    /// <summary>
    /// The draws replayed through <paramref name="chain"/> (y_T <c>[K·B, d]</c> → z) are the draws, and their log q is
    /// log N(ε) − log|det J| with J from central differences (h = 1e-5: error O(h²) on a smooth map in float64), with the
    /// determinant's sign.
    /// </summary>
    private static void AssertLogQOfAChain(Func<Tensor, Tensor> chain, Tensor yT, Tensor epsilon, Tensor logVarianceK, PosteriorDraws draws)
    {
        long d = yT.shape[1];
        Assert.True((chain(yT) - draws.Z.reshape(-1, d)).abs().max().item<double>() < 1e-10);
        const double h = 1e-5;
        var columns = new Tensor[d];
        for (int j = 0; j < d; j++)
        {
            var step = zeros_like(yT);
            step.select(1, j).fill_(h);
            columns[j] = (chain(yT + step) - chain(yT - step)) / (2 * h);                               // [K·B, d] = J[:, :, j]
        }
        var (sign, logAbsDet) = linalg.slogdet(stack(columns, 2));                                      // J [K·B, d(out), d(in)]
        var expectedLogQ = GaussianMath.LogDensityOfReparameterised(epsilon, logVarianceK) - logAbsDet;
        double error = (expectedLogQ - draws.LogQ.reshape(-1)).abs().max().item<double>();
        Assert.True(error < 1e-6, $"log q from autograd and from finite differences differ by {error}");
        Assert.True(draws.JacobianSign!.reshape(-1).eq(sign).all().item<bool>());
    }

    /// <summary>
    /// E_{z~q}[r(z)/q(z|x)] = ∫ r = 1 for any density r: a wrong log-determinant (its sign, a factor, a missing term)
    /// would scale the estimate. r is a Gaussian at the draws' mean with half their covariance, so r/q stays bounded.
    /// </summary>
    private static double ExpectedDensityRatio(PosteriorDraws draws)
    {
        using var scope = NewDisposeScope();
        var z = draws.Z.squeeze(1).to(float64);                                                          // [K, d]
        var centre = z.mean([0]);
        var centred = z - centre;
        var covariance = 0.5 * centred.t().matmul(centred) / (z.shape[0] - 1);
        var factor = linalg.cholesky(covariance);
        var standardised = linalg.solve_triangular(factor, centred.t(), upper: false).t();
        var logR = -0.5 * standardised.square().sum(1) - factor.diagonal().log().sum() - z.shape[1] * 0.5 * Math.Log(2 * Math.PI);
        return (logR - draws.LogQ.squeeze(1).to(float64)).exp().mean().item<double>();
    }

    [Theory]
    [InlineData(false, DdviStage.Ddvi)]
    [InlineData(false, DdviStage.Warmup)]
    [InlineData(true, DdviStage.Ddvi)]
    [InlineData(true, DdviStage.Warmup)]
    public void DdviPosteriorDensityByChangeOfVariablesIsNormalised(bool semiSupervised, DdviStage stage)
    {
        using nn.Module model = semiSupervised ? SmallSemiDdvi(seed: 34) : SmallDdvi(seed: 7);
        if (model is SemiDdviModel semi) semi.Stage = stage;
        else ((DdviModel)model).Stage = stage;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var draws = ((IPosteriorDensity)model).DrawWithLogDensity(Data(1, seed: 8), 20_000, new Generator(9));
        Assert.True(draws.JacobianSign!.eq(1).all().item<bool>(), "a small random chain should keep its orientation");
        double ratio = ExpectedDensityRatio(draws);
        Assert.True(Math.Abs(ratio - 1) < 0.03, $"E_q[r/q] = {ratio}");
    }

    [Fact]
    public void IafPosteriorDensityIsNormalisedAndIsTheElbosLogQ()
    {
        manual_seed(11);
        using var model = new IafVae(InputDim, latentDim: 2, hidden: 16, contextSize: 4, flowLayers: 2, madeHidden: 16);
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = Data(3, seed: 12);
        var draws = model.DrawWithLogDensity(x, 5, new Generator(13));
        // The same draws as the ELBO's sampler on the rows repeated K times.
        var sample = model.SamplePosterior(x.repeat(5, 1), new Generator(13));
        Assert.True(draws.Z.reshape(-1, 2).allclose(sample.Z, rtol: 1e-5, atol: 1e-6));
        Assert.True(draws.LogQ.reshape(-1).allclose(FlowObjective.LogQ(sample), rtol: 1e-5, atol: 1e-5));
        Assert.Null(draws.JacobianSign);

        double ratio = ExpectedDensityRatio(model.DrawWithLogDensity(x.narrow(0, 0, 1), 20_000, new Generator(14)));
        Assert.True(Math.Abs(ratio - 1) < 0.03, $"E_q[r/q] = {ratio}");
    }

    [Fact]
    public void GaussianPosteriorDensityIsTheNormalDensityOfItsDraws()
    {
        manual_seed(15);
        using var model = new GaussianVae(InputDim, latentDim: 2, hidden: 16);
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = Data(4, seed: 16);
        var draws = model.DrawWithLogDensity(x, 6, new Generator(17));
        var (mean, logVariance) = model.Posterior(x);
        var expected = GaussianMath.LogDensity(draws.Z, mean.unsqueeze(0), logVariance.exp().unsqueeze(0));   // [K, B]
        Assert.True(draws.LogQ.allclose(expected, rtol: 1e-5, atol: 1e-4));
        Assert.Equal(new long[] { 6, 4, 2 }, draws.Z.shape);
    }

    [Fact]
    public void HierarchicalIafLogQIsTheElbosAuxiliaryVariableTerm()
    {
        manual_seed(18);
        using var model = new HierarchicalIafVae(InputDim, latentDim: 2, hidden: 16, contextSize: 4, flowLayers: 2, madeHidden: 16,
            featureSize: 8, level2Hidden: 8);
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = Data(3, seed: 19);
        var draws = model.DrawWithLogDensity(x, 4, new Generator(20));
        var (level1, level2) = model.SamplePosterior(x.repeat(4, 1), new Generator(20));
        var expected = FlowObjective.LogQ(level1) + FlowObjective.LogQ(level2) - FlowObjective.StandardNormalLogDensity(level1.Z);
        Assert.True(draws.Z.reshape(-1, 2).allclose(level2.Z, rtol: 1e-5, atol: 1e-6));
        Assert.True(draws.LogQ.reshape(-1).allclose(expected, rtol: 1e-5, atol: 1e-4));
    }

    [Fact]
    public void DdviBoundsOnALinearGaussianModelStayBelowItsExactLogLikelihood()
    {
        // DDVI's posterior on a model with known log p(x): its true ELBO ≤ IWAE ≤ log p(x) holds only if log q is right.
        using var model = new LinearGaussianModel(seed: 21);
        manual_seed(22);
        using var ddvi = new DdviModel(new Mlp(LinearGaussianModel.D, [16], [2, 2]), model.Likelihood,
            new Mlp(LinearGaussianModel.D, [16], [2]), new ConditionalDenoiser(6, 2, 2, hidden: 16));
        ddvi.to(float64);
        ddvi.eval();
        using var scope = NewDisposeScope();
        var x = model.Sample(16, new Generator(23));
        AssertBoundsBelowLogLikelihood(ddvi, model, x, new Generator(24));
    }

    /// <summary>
    /// 1,000 draws for each of 16 rows of a linear-Gaussian model: true ELBO &lt; IWAE_10 &lt; IWAE_100, IWAE_1000 not above
    /// log p(x) beyond Monte Carlo error, one orientation of the chain on every draw.
    /// </summary>
    private static void AssertBoundsBelowLogLikelihood(IPosteriorDensity posterior, LinearGaussianModel model, Tensor x, Generator generator)
    {
        using var estimate = LikelihoodBounds.Estimate(posterior, new StandardNormalPrior(2, CPU), x, samples: 1000, rowBudget: 4000, generator);
        var summary = estimate.Summary;
        double logPx = model.LogMarginal(x).mean().item<double>();
        string shown = $"log p(x) = {logPx:F3}, true ELBO = {summary.TrueElbo.Mean:F3}, IWAE_k = {string.Join(", ", summary.Bounds.Select(b => $"{b.K}: {b.Mean:F3}"))}";
        Assert.True(summary.TrueElbo.Mean < summary.Bounds[1].Mean && summary.Bounds[1].Mean < summary.Bounds[2].Mean, shown);
        // IWAE_1000 is below log p(x) in expectation; a single example's estimate may exceed it by Monte Carlo error.
        var gap = model.LogMarginal(x) - estimate.LogLikelihood;                                       // [16]
        double gapError = gap.std().item<double>() / 4;
        Assert.True(gap.mean().item<double>() > -3 * gapError, $"{shown}; mean gap {gap.mean().item<double>():F4} ± {gapError:F4}");
        Assert.Equal(0, summary.Injectivity!.ExamplesWithSignChange);
        Assert.Equal(x.shape[0] * 1000, summary.Injectivity.Draws);
    }

    private static SemiDdviModel SmallSemiDdvi(long seed, int classes = 4)
    {
        manual_seed(seed);
        var model = SemiDdviModel.Paper(InputDim, latentDim: 2, classes, hidden: 16, steps: 5, dropout: 0.2, auxiliaryDropout: 0.2,
            contextDim: 3, denoiserHidden: 16);
        model.eval();
        return model;
    }

    [Fact]
    public void SemiDdviRoutedChainLogDeterminantMatchesAFiniteDifferenceJacobian()
    {
        using var model = SmallSemiDdvi(seed: 31);
        model.to(float64);
        using var scope = NewDisposeScope();
        var x = (Data(8, seed: 32, float64) - 0.5) * 20;   // spread out, so the untrained classifier predicts several classes
        const int samples = 3;
        using var noGrad = no_grad();
        var draws = model.DrawWithLogDensity(x, samples, new Generator(33));
        Assert.Equal(new long[] { samples, 8, 2 }, draws.Z.shape);
        Assert.Equal(new long[] { samples, 8 }, draws.LogQ.shape);

        // Replay: the only random numbers are y_T's noise; each row runs the chain of its predicted class.
        var (mean, logVariance, logits) = model.Encode(x);
        var predicted = logits.argmax(1);
        Assert.True(predicted.unique().Item1.shape[0] >= 2, "the rows should be routed through more than one class's chain");
        var epsilon = RandomDraws.Normal([samples * 8, 2], float64, CPU, new Generator(33));
        var logVarianceK = logVariance.repeat(samples, 1);
        var yT = mean.repeat(samples, 1) + (0.5 * logVarianceK).exp() * epsilon;                      // [K·B, d]
        var context = model.AuxiliaryEncoder.call(x).repeat(samples, 1);
        var classes = predicted.repeat(samples);
        Tensor Chain(Tensor y)
        {
            var rows = new Tensor[y.shape[0]];
            for (int r = 0; r < rows.Length; r++)
                rows[r] = model.RunClassChain((int)classes[r].item<long>(), y.narrow(0, r, 1), context.narrow(0, r, 1), conditioned: true)[-1];
            return cat(rows, 0);
        }

        AssertLogQOfAChain(Chain, yT, epsilon, logVarianceK, draws);
    }

    [Fact]
    public void SemiDdviBoundsOnALinearGaussianModelStayBelowItsExactLogLikelihood()
    {
        // The routed posterior on a model with known log p(x): true ELBO ≤ IWAE_10 ≤ IWAE_100 ≤ IWAE_1000 ≤ log p(x).
        using var model = new LinearGaussianModel(seed: 37);
        manual_seed(38);
        const int classes = 3;
        using var semi = new SemiDdviModel(new Mlp(LinearGaussianModel.D, [16], [2, 2, classes]), model.Likelihood,
            new Mlp(LinearGaussianModel.D, [16], [2]), new ClassDenoisers(classes, 6, 2, 0, 16), new ClassDenoisers(classes, 6, 2, 2, 16));
        semi.to(float64);
        semi.eval();
        using var scope = NewDisposeScope();
        var x = model.Sample(16, new Generator(39));
        using (no_grad())
            Assert.True(semi.ClassLogits(x).argmax(1).unique().Item1.shape[0] >= 2, "the rows should use more than one class's chain");
        AssertBoundsBelowLogLikelihood(semi, model, x, new Generator(40));
    }
}
