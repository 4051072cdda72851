using System.Text;
using OrderFlow.Grains.Hosting;

namespace OrderFlow.Tests;

/// <summary>
/// How the durable profile's request counter names what it sees: the bench's "storage operations per event" and the
/// OrderFlow.Storage meter are only as good as these names. Paths as the Azure SDK sends them to Azurite
/// (account in the path) and to Azure (no account).
/// </summary>
public sealed class StorageOperationCounterTests
{
    [Theory]
    [InlineData("GET", "/devstoreaccount1/OrderFlowOrders(PartitionKey='svc',RowKey='order_o-1')", "OrderFlowOrders", "read row")]
    [InlineData("PUT", "/devstoreaccount1/OrderFlowSubscribers(PartitionKey='svc',RowKey='points_o-1')", "OrderFlowSubscribers", "replace")]
    [InlineData("POST", "/devstoreaccount1/OrderFlowLedgers", "OrderFlowLedgers", "insert")]
    [InlineData("PATCH", "/OrleansSiloInstances(PartitionKey='c',RowKey='s')", "OrleansSiloInstances", "merge")]
    [InlineData("DELETE", "/OrleansReminders(PartitionKey='p',RowKey='r')", "OrleansReminders", "delete")]
    [InlineData("GET", "/devstoreaccount1/OrleansSiloInstances()", "OrleansSiloInstances", "query")]
    [InlineData("GET", "/OrleansReminders", "OrleansReminders", "query")]
    [InlineData("POST", "/devstoreaccount1/Tables", "(tables)", "create table")]
    [InlineData("POST", "/devstoreaccount1/$batch", "(batch)", "batch")]
    public void Table_requests_are_named_by_table_and_operation(string method, string path, string resource, string operation) =>
        Assert.Equal((resource, operation), StorageOperationCounter.ClassifyTable(method, path));

    [Theory]
    [InlineData("POST", "/devstoreaccount1/orderflow-svc-0/messages", "", 0, "put")]
    [InlineData("GET", "/devstoreaccount1/orderflow-svc-0/messages", "?numofmessages=25&visibilitytimeout=30", 3, "get")]
    [InlineData("GET", "/orderflow-svc-0/messages", "?numofmessages=25", 0, "get (empty)")]
    [InlineData("GET", "/orderflow-svc-0/messages", "?numofmessages=1&peekonly=true", 0, "peek")]
    [InlineData("DELETE", "/devstoreaccount1/orderflow-svc-0/messages/4c1b2a", "?popreceipt=abc", 0, "delete")]
    [InlineData("PUT", "/orderflow-svc-0/messages/4c1b2a", "?popreceipt=abc&visibilitytimeout=0", 0, "update")]
    [InlineData("DELETE", "/orderflow-svc-0/messages", "", 0, "clear")]
    [InlineData("PUT", "/devstoreaccount1/orderflow-svc-0", "", 0, "create queue")]
    [InlineData("GET", "/orderflow-svc-0", "?comp=metadata", 0, "properties")]
    public void Queue_requests_are_named_by_operation_and_empty_polls_apart(string method, string path, string query, int messages, string operation) =>
        Assert.Equal(operation, StorageOperationCounter.ClassifyQueue(method, path, query, messages));

    [Fact]
    public void Messages_are_counted_from_a_get_messages_body()
    {
        const string two = "<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessagesList><QueueMessage><MessageId>a</MessageId></QueueMessage>" +
                           "<QueueMessage><MessageId>b</MessageId></QueueMessage></QueueMessagesList>";
        Assert.Equal(2, StorageOperationCounter.CountMessages(Encoding.UTF8.GetBytes(two)));
        Assert.Equal(0, StorageOperationCounter.CountMessages(Encoding.UTF8.GetBytes("<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessagesList />")));
    }
}
