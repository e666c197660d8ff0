System.Console.WriteLine(Ddvi.Probe.Sum());
