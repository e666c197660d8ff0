using System.Globalization;
using System.Text;
using Ddvi.IO;

namespace Ddvi.Experiments.Genomics;

/// <summary>
/// Genotypes with population structure under the Balding–Nichols model (Balding &amp; Nichols 1995, Genetica 96:3), for
/// tests and benchmarks: per SNP an ancestral frequency p ~ U(0.05, 0.95); per population a frequency
/// p_k ~ Beta(p(1−F)/F, (1−p)(1−F)/F), which has mean p and variance F·p(1−p) (F = F_ST); per sample a genotype
/// ~ Binomial(2, p_k) counting A1, missing with probability <c>missingRate</c>.
/// </summary>
/// <remarks>
/// Sample i (0-based) of n belongs to population ⌊i·P/n⌋; IDs are <c>POP{k}_{i}</c>, populations <c>POP1</c> … Each SNP
/// draws from its own random stream, seeded from (seed, SNP index), so the file is the same for a seed whatever the
/// number of threads. SNPs are spread evenly over chromosomes 1–22, 1 kb apart, with two different random bases as
/// alleles; IDs <c>snp{j}</c>.
/// </remarks>
public static class SyntheticGenotypes
{
    /// <summary>
    /// Writes <c>prefix.bed/.bim/.fam</c> (<see cref="PlinkWriter"/>) and <c>prefix.panel</c> in the 1000 Genomes layout
    /// <c>sample pop super_pop gender</c> (super_pop = pop, gender <c>unknown</c>), streamed in blocks of SNPs generated on
    /// all cores. Returns the panel's path.
    /// </summary>
    public static string WritePlink(string prefix, int samples, long sites, int populations, ulong seed, double missingRate, double fst = 0.1)
    {
        if (samples < 1) throw new ArgumentOutOfRangeException(nameof(samples), samples, "at least one sample is needed.");
        if (sites < 1) throw new ArgumentOutOfRangeException(nameof(sites), sites, "at least one SNP is needed.");
        if (populations < 1 || populations > samples) throw new ArgumentOutOfRangeException(nameof(populations), populations, $"must lie in [1, samples = {samples}].");
        if (!(missingRate is >= 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(missingRate), missingRate, "must lie in [0, 1).");
        if (!(fst is > 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(fst), fst, "F_ST must lie in (0, 1).");

        var population = new int[samples];
        var ids = new string[samples];
        for (int i = 0; i < samples; i++)
        {
            population[i] = (int)((long)i * populations / samples);
            ids[i] = string.Create(CultureInfo.InvariantCulture, $"POP{population[i] + 1}_{i + 1}");
        }
        var panel = new StringBuilder("sample\tpop\tsuper_pop\tgender\n");
        for (int i = 0; i < samples; i++) panel.Append(CultureInfo.InvariantCulture, $"{ids[i]}\tPOP{population[i] + 1}\tPOP{population[i] + 1}\tunknown\n");

        PlinkWriter.Write(prefix, ids, Blocks(samples, sites, populations, population, seed, missingRate, fst));
        string panelPath = prefix + ".panel";
        AtomicFile.WriteAllText(panelPath, panel.ToString());
        return panelPath;
    }

    static IEnumerable<GenotypeBlock> Blocks(int samples, long sites, int populations, int[] population, ulong seed, double missingRate, double fst)
    {
        const int blockSites = 2048;
        for (long start = 0; start < sites; start += blockSites)
        {
            int count = (int)Math.Min(blockSites, sites - start);
            var dosages = new float[count * samples];
            var described = new GenotypeSite[count];
            long first = start;
            Parallel.For(0, count, () => new double[populations * 3], (j, _, thresholds) =>
            {
                described[j] = Site(first + j, sites, samples, populations, population, seed, missingRate, fst, dosages.AsSpan(j * samples, samples), thresholds);
                return thresholds;
            }, _ => { });
            yield return new GenotypeBlock(samples, count, dosages, described);
        }
    }

    static readonly string[] Bases = ["A", "C", "G", "T"];

    static GenotypeSite Site(long index, long sites, int samples, int populations, int[] population, ulong seed, double missingRate, double fst,
        Span<float> dosages, double[] thresholds)
    {
        var random = new SplitMix64(seed ^ (0x9E3779B97F4A7C15UL * (ulong)(index + 1)));
        double p = 0.05 + 0.9 * random.NextDouble();
        for (int k = 0; k < populations; k++)
        {
            double q = random.Beta(p * (1 - fst) / fst, (1 - p) * (1 - fst) / fst);
            // One uniform per genotype: [0, m) missing, then 2, 1, 0 copies of A1 with probabilities q², 2q(1−q), (1−q)².
            thresholds[3 * k] = missingRate;
            thresholds[3 * k + 1] = missingRate + (1 - missingRate) * q * q;
            thresholds[3 * k + 2] = thresholds[3 * k + 1] + (1 - missingRate) * 2 * q * (1 - q);
        }
        for (int i = 0; i < samples; i++)
        {
            double u = random.NextDouble();
            int t = 3 * population[i];
            dosages[i] = u < thresholds[t] ? float.NaN : u < thresholds[t + 1] ? 2f : u < thresholds[t + 2] ? 1f : 0f;
        }
        int a1 = (int)(random.Next() % 4), a2 = (a1 + 1 + (int)(random.Next() % 3)) % 4;
        int chrom = (int)(index * 22 / sites) + 1;
        long firstOfChrom = ((chrom - 1) * sites + 21) / 22;
        return new GenotypeSite(chrom.ToString(CultureInfo.InvariantCulture), 1000 * (index - firstOfChrom + 1),
            string.Create(CultureInfo.InvariantCulture, $"snp{index + 1}"), Bases[a1], Bases[a2]);
    }

    /// <summary>SplitMix64 (Steele, Lea &amp; Flood 2014): a 64-bit state advanced by the golden-ratio increment and mixed.</summary>
    struct SplitMix64(ulong state)
    {
        public ulong Next()
        {
            ulong z = state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        /// <summary>Uniform on [0, 1) with 53 random bits.</summary>
        public double NextDouble() => (Next() >> 11) * (1.0 / (1UL << 53));

        public double Beta(double a, double b)
        {
            double x = Gamma(a), y = Gamma(b);
            return x / (x + y);
        }

        /// <summary>Gamma(shape, 1) by Marsaglia &amp; Tsang (2000); a shape below 1 through Gamma(shape + 1)·U^(1/shape).</summary>
        double Gamma(double shape)
        {
            if (shape < 1) return Gamma(shape + 1) * Math.Pow(1 - NextDouble(), 1 / shape);
            double d = shape - 1.0 / 3, c = 1 / Math.Sqrt(9 * d);
            while (true)
            {
                double x, v;
                do
                {
                    x = Normal();
                    v = 1 + c * x;
                } while (v <= 0);
                v = v * v * v;
                double u = 1 - NextDouble();
                if (Math.Log(u) < 0.5 * x * x + d - d * v + d * Math.Log(v)) return d * v;
            }
        }

        double Normal()
        {
            // Box–Muller, one of the pair.
            double u = 1 - NextDouble(), v = NextDouble();
            return Math.Sqrt(-2 * Math.Log(u)) * Math.Cos(2 * Math.PI * v);
        }
    }
}
