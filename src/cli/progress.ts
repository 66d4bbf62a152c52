// Live progress of a wait, on stderr only. On a terminal: one line redrawn in place with a
// spinner, the operation's latest description and the elapsed time, e.g.
//   ⠋ provisioning orders-db: Installing chart postgresql (00:12)
// Elsewhere (CI logs, pipes, files): a timestamped line each time the description changes.

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const CLEAR_LINE = '\r\x1b[2K';

export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export function elapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  const hh = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return hh > 0 ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
}

export class Progress {
  readonly #stream: ProgressStream;
  readonly #tty: boolean;
  readonly #label: string;
  readonly #started = Date.now();
  #description = '';
  #frame = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(label: string, stream: ProgressStream = process.stderr) {
    this.#stream = stream;
    this.#tty = stream.isTTY === true && process.env.TERM !== 'dumb';
    this.#label = label;
    if (this.#tty) {
      this.#draw();
      this.#timer = setInterval(() => this.#draw(), 100);
      this.#timer.unref();
    } else {
      this.#line('started');
    }
  }

  /** The operation's latest description (the broker's last_operation description). */
  update(description: string | undefined): void {
    const d = (description ?? '').trim();
    if (d === this.#description) return;
    this.#description = d;
    if (this.#tty) this.#draw();
    else if (d) this.#line(d);
  }

  /** Ends the display, leaving `final` (e.g. "provisioned orders-db") as the last line. */
  stop(final: string): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    const text = `${final} (${elapsed(Date.now() - this.#started)})`;
    if (this.#tty) this.#stream.write(`${CLEAR_LINE}${text}\n`);
    else this.#line(text, false);
  }

  #draw(): void {
    const frame = FRAMES[this.#frame++ % FRAMES.length];
    let text = `${frame} ${this.#label}${this.#description ? `: ${this.#description}` : ''} (${elapsed(Date.now() - this.#started)})`;
    // A line wider than the terminal wraps, and \r would then redraw only its last row.
    const width = this.#stream.columns ?? 80;
    if (text.length > width - 1) text = `${text.slice(0, width - 2)}…`;
    this.#stream.write(`${CLEAR_LINE}${text}`);
  }

  #line(text: string, withLabel = true): void {
    this.#stream.write(`${new Date().toISOString()} ${withLabel ? `${this.#label}: ` : ''}${text}\n`);
  }
}
