// Smoke test of the Ddvi package in a project of its own: a Bernoulli likelihood with a small linear decoder, the
// pinwheel prior, prior samples, log-densities and a log-likelihood. Exit code 0 means TorchSharp's native library
// loaded and Ddvi ran.
using Ddvi.Likelihoods;
using Ddvi.Priors;
using TorchSharp;
using static TorchSharp.torch;

const int latentDim = 2, dataDim = 16, n = 5;
torch.random.manual_seed(0);
var device = CPU;
using var generator = new Generator(0);

nn.Module<Tensor, Tensor> decoder = nn.Linear(latentDim, dataDim);
using var likelihood = new BernoulliLikelihood(decoder, latentDim, dataDim);
IPrior prior = new PinwheelPrior(device);  // Sample comes through IPrior (a labelled prior also has SampleLabelled)

using var z = prior.Sample(n, generator);
using var logPrior = prior.LogDensity(z);
using var x = likelihood.Sample(z, generator);
using var logLikelihood = likelihood.LogProb(x, z);

Console.WriteLine($"TorchSharp {typeof(torch).Assembly.GetName().Version}, libtorch on {device.type}");
Console.WriteLine($"prior {prior.Name} (d = {prior.Dimension}), likelihood {likelihood.Describe()}");
for (int i = 0; i < n; i++)
{
    Console.WriteLine(
        $"z = ({z[i, 0].item<float>(),7:F3}, {z[i, 1].item<float>(),7:F3})  log p(z) = {logPrior[i].item<float>(),8:F3}  " +
        $"log p(x|z) = {logLikelihood[i].item<float>(),8:F3}");
}

bool finite = logPrior.isfinite().all().item<bool>() && logLikelihood.isfinite().all().item<bool>();
Console.WriteLine(finite ? "PackageSmoke: ok" : "PackageSmoke: non-finite log-probability");
return finite ? 0 : 1;
