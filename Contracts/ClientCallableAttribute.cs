namespace OrderFlow.Contracts;

/// <summary>
/// Marks a grain interface an external client (the CLI, a service through the gateway) may call. Every other grain
/// interface of OrderFlow — ledgers, replica rows, subscriber inboxes, the dead-letter index, the SMS gateway — is
/// internal to the silo: a call from an external client is refused (<c>ClientCallFilter</c>), so no process outside
/// the cluster can move a balance or skip an event behind the pipeline's back. Clients act through
/// <see cref="IOrderGrain"/> (commands), <see cref="IOperationsGrain"/> (operators) and <see cref="IStoredStateGrain"/>
/// (read-only verification).
/// </summary>
[AttributeUsage(AttributeTargets.Interface, Inherited = false)]
public sealed class ClientCallableAttribute : Attribute;
