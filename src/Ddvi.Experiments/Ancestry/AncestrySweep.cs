using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ddvi.Experiments.Comparison;
using Ddvi.Experiments.Genomics;
using Ddvi.Experiments.Sweeps;
using Ddvi.Runtime;
using Ddvi.Training;
using static TorchSharp.torch;

namespace Ddvi.Experiments.Ancestry;

/// <summary>
/// An ancestry study as a sweep: one manifest entry of kind <see cref="SweepManifest.AncestryKind"/> per method × seed,
/// whose configuration holds everything the run needs (genotypes, panel, filters, PCA options, settings, method, seed,
/// study folder). The principal components are computed once, before any task, into the study's cache (<c>pca/</c>);
/// each task loads them from there (and computes them itself, writing the cache atomically, only when the cache is
/// missing or stale). A task holds its own run folder (<see cref="RunLock"/>), never the study folder, so the tasks of a
/// study run side by side as local child processes or as a Slurm job array.
/// </summary>
public static class AncestrySweep
{
    /// <summary>The file whose presence marks a finished ancestry run.</summary>
    public const string ScoresFile = "scores.json";

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>The run folder of one method and seed: <c>STUDY/runs/METHOD-seedS</c>.</summary>
    public static string RunFolder(string study, string method, int seed) =>
        Path.Combine(Path.GetFullPath(study), "runs", $"{method}-seed{seed}");

    /// <summary>
    /// The manifest tasks of <paramref name="request"/>: methods in order, each with every seed; each task runs with
    /// <paramref name="threads"/> libtorch threads (0: libtorch's default), an execution setting that a resumed run may change.
    /// </summary>
    public static IReadOnlyList<(string Name, string Folder, JsonObject Config)> Tasks(AncestryRequest request, int threads = 0) =>
        [.. request.Methods.SelectMany(method => request.Seeds.Select(seed =>
            ($"{method}-seed{seed}", RunFolder(request.Out, method, seed), EntryConfig(request, method, seed, threads))))];

    /// <summary>
    /// Writes (or updates, keeping its indices) <c>STUDY/manifest.json</c> with one entry per method × seed of
    /// <paramref name="request"/>, holding the study folder meanwhile; returns it with the request's entries in order.
    /// </summary>
    public static (SweepManifest Manifest, IReadOnlyList<ManifestEntry> Planned, string Path) WriteManifest(AncestryRequest request, int threads = 0)
    {
        AncestryRunner.Validate(request);
        CheckThreads(threads);
        using var hold = RunLock.Acquire(request.Out);
        return SweepManifest.WriteFor(request.Out, SweepManifest.AncestryKind, Tasks(request, threads));
    }

    /// <summary>
    /// Before a study's tasks are launched: checks the request, computes the principal components into the study's cache
    /// (or finds them there) and writes the manifest, holding the study folder meanwhile.
    /// </summary>
    public static (SweepManifest Manifest, IReadOnlyList<ManifestEntry> Planned, string Path) Prepare(AncestryRequest request, Action<string> log, int threads = 0)
    {
        AncestryRunner.Validate(request);
        CheckThreads(threads);
        using var hold = RunLock.Acquire(request.Out);
        var (pcs, _) = AncestryRunner.PrincipalComponents(request, log);
        pcs.Dispose();
        return SweepManifest.WriteFor(request.Out, SweepManifest.AncestryKind, Tasks(request, threads));
    }

    /// <summary>The request of one entry: its method and seed alone, with the study's genotypes, panel, filters and settings. Errors name the entry.</summary>
    public static AncestryRequest Request(ManifestEntry entry, string manifestPath)
    {
        string where = $"{manifestPath}, entry {entry.Index} ({entry.Name})";
        try
        {
            var c = entry.Config;
            var request = new AncestryRequest(
                c["genotypes"]!.GetValue<string>(),
                c["panel"]!.GetValue<string>(),
                [c["method"]!.GetValue<string>()],
                [c["seed"]!.GetValue<int>()],
                c["study"]!.GetValue<string>(),
                c["filters"].Deserialize<GenotypeFilters>() ?? throw new InvalidDataException("\"filters\" is null"),
                c["pca"].Deserialize<GenotypePcaOptions>() ?? throw new InvalidDataException("\"pca\" is null"),
                c["settings"].Deserialize<AncestrySettings>() ?? throw new InvalidDataException("\"settings\" is null"));
            AncestryRunner.Validate(request);
            if (!SameFolder(RunFolder(request.Out, request.Methods[0], request.Seeds[0]), entry.Folder))
                throw new InvalidDataException($"its folder {entry.Folder} is not {RunFolder(request.Out, request.Methods[0], request.Seeds[0])}");
            return request;
        }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException or JsonException
                                      or InvalidDataException or ArgumentException or FileNotFoundException)
        {
            throw new InvalidDataException($"{where}: not a valid ancestry entry ({e.Message}).", e);
        }
    }

    /// <summary>
    /// Runs one entry to its end, idempotently (see <see cref="AncestryRunner"/>: a finished run is reused, a learned run
    /// resumes from its checkpoints), holding its run folder. A failure is recorded in the run folder's failure.json
    /// (see <see cref="SweepStatus"/>) until the run finishes; a folder held by another task is reported and left alone.
    /// </summary>
    public static EntryOutcome RunTask(ManifestEntry entry, string manifestPath, ITrainingObserver observer, CancellationToken stop = default)
    {
        var request = Request(entry, manifestPath);
        int threads = Threads(entry, manifestPath);
        ComputeDevice.SetThreads(threads);
        return RunTask(entry, request, null, observer.Message, observer, stop);
    }

    static EntryOutcome RunTask(ManifestEntry entry, AncestryRequest request, (Tensor Pcs, AncestryLabels Labels)? loaded,
        Action<string> log, ITrainingObserver observer, CancellationToken stop)
    {
        string method = request.Methods[0];
        int seed = request.Seeds[0];
        try
        {
            using var hold = RunLock.Acquire(entry.Folder);
            bool resume = File.Exists(Path.Combine(entry.Folder, "config.json")) && !File.Exists(Path.Combine(entry.Folder, ScoresFile));
            var (pcs, labels) = loaded ?? AncestryRunner.PrincipalComponents(request, log);
            try
            {
                var scores = AncestryRunner.RunOne(request, method, seed, pcs, labels, log, observer, stop);
                SweepTasks.ClearFailure(entry.Folder);
                return new EntryOutcome(entry, scores.Reused ? RunStatus.Reused : resume ? RunStatus.Resumed : RunStatus.Trained);
            }
            finally
            {
                if (loaded is null) pcs.Dispose();
            }
        }
        catch (OperationCanceledException e) when (stop.IsCancellationRequested)
        {
            return new EntryOutcome(entry, RunStatus.Stopped, e.Message);
        }
        catch (RunFolderInUseException e)
        {
            // Another task holds the folder: its run, not ours to mark as failed.
            return new EntryOutcome(entry, RunStatus.Failed, e.Message);
        }
        catch (Exception e)
        {
            SweepTasks.RecordFailure(entry.Folder, e.Message);
            return new EntryOutcome(entry, RunStatus.Failed, e.Message);
        }
    }

    /// <summary>
    /// A whole study on this machine: the PCs once, the manifest, then every entry — in this process one after another
    /// (<paramref name="jobs"/> = 1) or as <c>ddvi run --manifest … --index N</c> child processes, <paramref name="jobs"/>
    /// at a time — and the tables from the finished runs. Throws when a run failed (the others are tabulated).
    /// </summary>
    /// <param name="threads">libtorch threads of each run, in this process or in each child; 0: libtorch's default for one job, the
    /// cores divided among the jobs (<see cref="ThreadsEachOf"/>) for more.</param>
    public static IReadOnlyList<AncestryRunScores> Run(AncestryRequest request, int jobs, Action<string> log, ITrainingObserver observer,
        ITrainProcessLauncher? launcher = null, CancellationToken cancellationToken = default, int threads = 0)
    {
        AncestryRunner.Validate(request);
        if (jobs < 1) throw new ArgumentException($"--jobs must be ≥ 1 (runs at the same time), got {jobs}.");
        CheckThreads(threads);
        using var hold = RunLock.Acquire(request.Out);
        if (jobs == 1) ComputeDevice.SetThreads(threads);

        var (pcs, labels) = AncestryRunner.PrincipalComponents(request, log);
        using var _ = pcs;
        // Children left at libtorch's default would each take every core: divide the cores among the jobs, as compare does.
        int threadsEachRun = jobs > 1 && threads == 0 ? ThreadsEachOf(jobs) : threads;
        if (threadsEachRun != threads) log($"ancestry: {jobs} jobs at a time, {threadsEachRun} libtorch thread(s) each ({Environment.ProcessorCount} cores; --threads sets it)");
        var (_, planned, manifestPath) = SweepManifest.WriteFor(request.Out, SweepManifest.AncestryKind, Tasks(request, threadsEachRun));
        var finishedBefore = planned.Where(e => File.Exists(Path.Combine(e.Folder, ScoresFile))).Select(e => e.Index).ToHashSet();
        var failures = new List<string>();
        if (jobs == 1)
        {
            foreach (var entry in planned)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var entryRequest = request with { Methods = [Method(entry)], Seeds = [Seed(entry)] };
                var outcome = RunTask(entry, entryRequest, (pcs, labels), log, observer, cancellationToken);
                if (outcome.Status == RunStatus.Stopped) throw new OperationCanceledException(outcome.Error, cancellationToken);
                if (outcome.Status == RunStatus.Failed)
                {
                    failures.Add($"{Method(entry)} seed {Seed(entry)}: {outcome.Error}");
                    log($"ancestry: {Method(entry)} seed {Seed(entry)} failed: {outcome.Error}");
                }
            }
        }
        else
        {
            var processes = launcher ?? DdviProcessLauncher.ForCurrentProcess();
            var sayLock = new Lock();
            void Say(string line)
            {
                lock (sayLock) log(line);
            }
            Parallel.ForEachAsync(planned.Where(e => !finishedBefore.Contains(e.Index)), new ParallelOptions { MaxDegreeOfParallelism = jobs }, async (entry, _) =>
            {
                if (cancellationToken.IsCancellationRequested) return;
                Say($"ancestry: {entry.Name} in a child process");
                string[] arguments = ["run", "--manifest", manifestPath, "--index", entry.Index.ToString(CultureInfo.InvariantCulture)];
                var result = await processes.RunAsync(arguments, line => Say($"[{entry.Name}] {line}"), cancellationToken).ConfigureAwait(false);
                if (result.ExitCode == 0 && File.Exists(Path.Combine(entry.Folder, ScoresFile))) return;
                var errors = result.ErrorLines.Where(l => l.StartsWith("error: ", StringComparison.Ordinal)).Select(l => l["error: ".Length..]).ToList();
                string detail = errors.Count > 0 ? string.Join("; ", errors) : $"exit code {result.ExitCode}";
                lock (failures) failures.Add($"{Method(entry)} seed {Seed(entry)}: {detail}");
                Say($"ancestry: {entry.Name} failed: {detail}");
            }).GetAwaiter().GetResult();
            cancellationToken.ThrowIfCancellationRequested();
        }

        var results = new List<AncestryRunScores>();
        foreach (var entry in planned)
        {
            string scores = Path.Combine(entry.Folder, ScoresFile);
            if (File.Exists(scores)) results.Add(AncestryRunner.LoadScores(scores, reused: finishedBefore.Contains(entry.Index)));
        }
        AncestryReport.Write(request, results, failures, labels);
        log($"ancestry: results in {Path.Combine(request.Out, AncestryReport.MarkdownFile)} and {Path.Combine(request.Out, AncestryReport.CsvFile)}");
        if (failures.Count > 0)
            throw new InvalidOperationException($"ddvi ancestry: {failures.Count} run(s) failed (the others are tabulated): {string.Join("; ", failures)}");
        return results;
    }

    /// <summary>
    /// results.md and results.csv of the study in <paramref name="outputFolder"/> from the finished entries among
    /// <paramref name="statuses"/>; the failed and missing ones are named below the tables. Returns the files written
    /// (none when no run finished). The labels come from the study's PCA cache (computed when it is missing).
    /// </summary>
    public static IReadOnlyList<string> Report(IReadOnlyList<EntryStatus> statuses, string manifestPath, string outputFolder, Action<string>? log = null)
    {
        var finished = statuses.Where(s => s.State == EntryState.Finished).ToList();
        if (finished.Count == 0) return [];
        var ancestry = statuses.Select(s => s.Entry).ToList();
        var first = Request(finished[0].Entry, manifestPath);
        var request = first with
        {
            Out = Path.GetFullPath(outputFolder),
            Methods = [.. ancestry.Select(Method).Distinct()],
            Seeds = [.. ancestry.Select(Seed).Distinct()],
        };
        var results = finished.Select(s => AncestryRunner.LoadScores(Path.Combine(s.Entry.Folder, ScoresFile), reused: true)).ToList();
        var problems = statuses.Where(s => s.State != EntryState.Finished)
            .Select(s => $"{Method(s.Entry)} seed {Seed(s.Entry)}: {s.State.ToString().ToLowerInvariant()}{(s.Detail is null ? "" : $" ({s.Detail})")}").ToList();
        var (pcs, labels) = AncestryRunner.PrincipalComponents(first, log ?? (_ => { }));
        pcs.Dispose();
        Directory.CreateDirectory(request.Out);
        AncestryReport.Write(request, results, problems, labels);
        return [Path.Combine(request.Out, AncestryReport.MarkdownFile), Path.Combine(request.Out, AncestryReport.CsvFile)];
    }

    static string Method(ManifestEntry entry) => entry.Config["method"]?.GetValue<string>() ?? entry.Name;

    static int Seed(ManifestEntry entry) => entry.Config["seed"]?.GetValue<int>() ?? 0;

    /// <summary>Threads of each of <paramref name="jobs"/> local runs when none were asked for: the cores divided among them, at least one.</summary>
    public static int ThreadsEachOf(int jobs) => Math.Max(1, Environment.ProcessorCount / jobs);

    static void CheckThreads(int threads)
    {
        if (threads < 0) throw new ArgumentException($"--threads must be 0 (libtorch's default) or a positive count, got {threads}.");
    }

    /// <summary>The entry's libtorch threads (0 when it names none).</summary>
    static int Threads(ManifestEntry entry, string manifestPath)
    {
        try
        {
            int threads = entry.Config["threads"]?.GetValue<int>() ?? 0;
            CheckThreads(threads);
            return threads;
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or ArgumentException)
        {
            throw new InvalidDataException($"{manifestPath}, entry {entry.Index} ({entry.Name}): not a valid ancestry entry (\"threads\": {e.Message}).", e);
        }
    }

    static JsonObject EntryConfig(AncestryRequest request, string method, int seed, int threads) => new()
    {
        ["threads"] = threads,
        ["method"] = method,
        ["seed"] = seed,
        ["study"] = Path.GetFullPath(request.Out),
        ["genotypes"] = Path.GetFullPath(request.Genotypes),
        ["panel"] = Path.GetFullPath(request.Panel),
        ["filters"] = JsonSerializer.SerializeToNode(request.Filters, Json),
        ["pca"] = JsonSerializer.SerializeToNode(request.Pca, Json),
        ["settings"] = JsonSerializer.SerializeToNode(request.Settings, Json),
    };

    static bool SameFolder(string a, string b) =>
        string.Equals(Path.GetFullPath(a).TrimEnd('/'), Path.GetFullPath(b).TrimEnd('/'), StringComparison.Ordinal);
}
