/** `host:port` of a redis:// URL, used as the node label. */
export function nodeLabel(url: string): string {
  const u = new URL(url);
  return `${u.hostname.replace(/^\[|\]$/g, '')}:${u.port || '6379'}`;
}

/** The URL with any password replaced, safe for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable redis url>';
  }
}
