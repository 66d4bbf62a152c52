declare module 'autocannon' {
  const autocannon: (opts: Record<string, unknown>) => Promise<{
    requests: { average: number };
    latency: { p99: number };
    errors: number;
    non2xx: number;
  }>;
  export default autocannon;
}
