using OrderFlow.Silo;

// ASP.NET Core host: the Orleans silo and its HTTP API in one process (SiloApp). Ctrl+C and SIGTERM stop it gracefully.
var (app, problems) = SiloApp.Build(args);
if (app is null)
{
    foreach (var problem in problems)
    {
        Console.Error.WriteLine($"error: invalid setting in {problem}");
    }

    return SiloApp.BadSettings;
}

await using (app)
{
    return await SiloApp.RunAsync(app, Console.Error);
}
