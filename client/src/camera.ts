/**
 * The caller's camera and the per-frame tracking loop. openCamera() owns the MediaStream (close() stops
 * its tracks); FrameLoop calls back once per new camera frame via requestVideoFrameCallback.
 */
export async function openCamera(): Promise<MediaStream> {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new TypeError('navigator.mediaDevices.getUserMedia is not available (page not served over https or localhost)');
  }
  return navigator.mediaDevices.getUserMedia({
    audio: false,
    video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 }, facingMode: 'user' },
  });
}

/**
 * The caller's microphone, raw: the browser's echo cancellation, noise suppression and automatic gain control
 * change the waveform (audio-path.md: polarity, gain) and the server's voice features expect the voice as spoken.
 * Only this permission is asked in microphone-only mode (no camera).
 */
export async function openMicrophone(): Promise<MediaStream> {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new TypeError('navigator.mediaDevices.getUserMedia is not available (page not served over https or localhost)');
  }
  return navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
    video: false,
  });
}

export function stopStream(stream: MediaStream | null): void {
  if (!stream) return;
  for (const t of stream.getTracks()) t.stop();
}

/**
 * Calls `onFrame(now, metadata)` for each frame the <video> element presents, until stop(). The
 * callback runs on the main thread; frames that arrive while it is busy are skipped by the browser
 * (metadata.presentedFrames tells how many).
 */
export class FrameLoop {
  readonly #video: HTMLVideoElement;
  readonly #onFrame: (now: number, meta: VideoFrameCallbackMetadata) => void;
  #handle: number | null = null;
  #stopped = false;

  constructor(video: HTMLVideoElement, onFrame: (now: number, meta: VideoFrameCallbackMetadata) => void) {
    if (typeof video.requestVideoFrameCallback !== 'function') {
      throw new Error('this browser lacks HTMLVideoElement.requestVideoFrameCallback (use Chrome/Edge 83+, Safari 15.4+ or Firefox 132+)');
    }
    this.#video = video;
    this.#onFrame = onFrame;
    this.#schedule();
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#handle !== null) this.#video.cancelVideoFrameCallback(this.#handle);
    this.#handle = null;
  }

  #schedule(): void {
    this.#handle = this.#video.requestVideoFrameCallback((now, meta) => {
      if (this.#stopped) return;
      try {
        this.#onFrame(now, meta);
      } finally {
        if (!this.#stopped) this.#schedule();
      }
    });
  }
}
