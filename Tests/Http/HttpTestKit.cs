using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace OrderFlow.Tests.Http;

/// <summary>Requests and checks the HTTP tests share.</summary>
public static class HttpTestKit
{
    public static Task<HttpResponseMessage> PostAsync(this HttpClient client, string path, object? body, string? idempotencyKey = null) =>
        SendAsync(client, HttpMethod.Post, path, body is null ? null : JsonContent.Create(body, options: HttpSiloFixture.Json), idempotencyKey);

    public static Task<HttpResponseMessage> PutAsync(this HttpClient client, string path, object body) =>
        SendAsync(client, HttpMethod.Put, path, JsonContent.Create(body, options: HttpSiloFixture.Json), null);

    /// <summary>A body sent as it is written, for what a serializer would never produce (bad JSON).</summary>
    public static Task<HttpResponseMessage> PostRawAsync(this HttpClient client, string path, string body, string contentType = "application/json") =>
        SendAsync(client, HttpMethod.Post, path, new StringContent(body, Encoding.UTF8, contentType), null);

    /// <summary>A PUT body sent as it is written.</summary>
    public static Task<HttpResponseMessage> PutRawAsync(this HttpClient client, string path, string body) =>
        SendAsync(client, HttpMethod.Put, path, new StringContent(body, Encoding.UTF8, "application/json"), null);

    private static async Task<HttpResponseMessage> SendAsync(HttpClient client, HttpMethod method, string path, HttpContent? content, string? idempotencyKey)
    {
        using var request = new HttpRequestMessage(method, path) { Content = content };
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        return await client.SendAsync(request);
    }

    /// <summary>Asserts an RFC 9457 problem with this status and <c>code</c>; returns its body.</summary>
    public static async Task<JsonElement> AssertProblemAsync(this HttpResponseMessage response, HttpStatusCode status, string code)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri}: expected {(int)status} {code}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(text).RootElement;
        Assert.Equal((int)status, problem.GetProperty("status").GetInt32());
        Assert.True(problem.TryGetProperty("code", out var actual) && actual.GetString() == code, $"expected code {code}: {text}");
        Assert.False(string.IsNullOrEmpty(problem.GetProperty("title").GetString()), text);
        return problem;
    }

    /// <summary>Asserts a 2xx answer and reads its body.</summary>
    public static async Task<T> AssertOkAsync<T>(this HttpResponseMessage response, HttpStatusCode status = HttpStatusCode.OK)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri}: expected {(int)status}, got {(int)response.StatusCode}: {text}");
        return JsonSerializer.Deserialize<T>(text, HttpSiloFixture.Json)!;
    }
}
