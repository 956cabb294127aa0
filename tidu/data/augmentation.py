"""Random image augmentation in NumPy: shifts, rotations, elastic distortion, noise."""

import numpy as np

from tidu.errors import ShapeError


def gaussian_kernel(sigma):
    """The 1-D Gaussian g(k) ∝ exp(−k² / 2σ²), k = −r..r with r = int(4σ + 0.5), summing to 1
    (scipy.ndimage's truncate=4)."""
    radius = int(4 * sigma + 0.5)
    k = np.arange(-radius, radius + 1)
    g = np.exp(-k**2 / (2 * sigma**2))
    return g / g.sum()


def gaussian_matrix(n, sigma):
    """The (n, n) matrix K with K @ v = g * v (convolution with `gaussian_kernel(sigma)`,
    zeros beyond the ends, output the size of v): K[i, j] = g(i − j) for |i − j| <= r.
    K_H @ F @ K_W^T is the separable 2-D Gaussian blur of a field F, batched by matmul."""
    g = gaussian_kernel(sigma)
    radius = len(g) // 2
    offset = np.arange(n)[:, None] - np.arange(n)[None, :]
    return np.where(np.abs(offset) <= radius, g[np.clip(offset + radius, 0, 2 * radius)], 0.0)


class ImageAugmenter:
    """Random shifts, rotations, elastic distortions and Gaussian noise, per image.

    Images are (N, H, W) or (N, H, W, C) (channels last). Output pixel p = (row, col) of an
    image reads the input at the point

        q = m + R(θ) · (p − m) − s + d(p)

    by bilinear interpolation (a point outside the image reads fill_value), then gets noise:
    out(p) = x(q) + n(p). Per image, independently:
        s = (s_row, s_col)   shift, uniform in ±height_shift_range, ±width_shift_range (a
                             value < 1 is a fraction of H or W, a value >= 1 is pixels, as
                             in Keras); the content moves down by s_row and right by s_col
        θ                    uniform in ±rotation_range degrees; the content turns θ
                             counter-clockwise (as displayed, rows going down) about the
                             centre m = ((H − 1) / 2, (W − 1) / 2), with
                             R(θ) = [[cos θ, sin θ], [−sin θ, cos θ]] in (row, col) terms
        d = α · G_σ * U      elastic distortion (Simard, Steinkraus & Platt, "Best Practices
                             for Convolutional Neural Networks Applied to Visual Document
                             Analysis", ICDAR 2003): U a field of uniform(−1, 1) per pixel
                             and coordinate, blurred by a Gaussian of std σ = elastic_sigma
                             pixels (zeros beyond the border), scaled by α = elastic_alpha.
                             The paper's MNIST setting is α = 34, σ = 4.
        n ~ N(0, gaussian_noise²) per pixel and channel.
    A transform whose parameter is 0 is skipped, so the default augmenter returns the input.

    `augmenter(x_batch, rng)` returns a float32 batch of the same shape; rng is a NumPy
    Generator (None: the augmenter's own, seeded by `seed`). Everything is vectorized over the
    batch: 128 images of 28 x 28 with every transform take a few milliseconds.
    """

    def __init__(self, width_shift_range=0.0, height_shift_range=0.0, rotation_range=0.0,
                 elastic_alpha=0.0, elastic_sigma=4.0, gaussian_noise=0.0, fill_value=0.0,
                 seed=None):
        for name, value in (("width_shift_range", width_shift_range),
                            ("height_shift_range", height_shift_range),
                            ("rotation_range", rotation_range), ("elastic_alpha", elastic_alpha),
                            ("gaussian_noise", gaussian_noise)):
            if not (isinstance(value, (int, float, np.number)) and value >= 0):
                raise ValueError(f"ImageAugmenter: expected {name} >= 0, got {name}={value!r}")
        if not (isinstance(elastic_sigma, (int, float, np.number)) and elastic_sigma > 0):
            raise ValueError(f"ImageAugmenter: expected elastic_sigma > 0, "
                             f"got elastic_sigma={elastic_sigma!r}")
        self.width_shift_range, self.height_shift_range = width_shift_range, height_shift_range
        self.rotation_range = rotation_range
        self.elastic_alpha, self.elastic_sigma = elastic_alpha, elastic_sigma
        self.gaussian_noise, self.fill_value, self.seed = gaussian_noise, fill_value, seed
        self.rng = np.random.default_rng(seed)
        self._blur = {}  # (n, sigma) -> gaussian_matrix(n, sigma)

    def __call__(self, x, rng=None):
        """x (N, H, W) or (N, H, W, C), augmented: float32, same shape, new draws from rng."""
        x = np.asarray(x)
        if x.ndim not in (3, 4):
            raise ShapeError(f"ImageAugmenter expected images of shape (N, H, W) or "
                             f"(N, H, W, C), got shape {x.shape}")
        rng = self.rng if rng is None else rng
        images = (x if x.ndim == 4 else x[..., None]).astype(np.float32)
        N, H, W, _ = images.shape
        if self.width_shift_range or self.height_shift_range or self.rotation_range \
                or self.elastic_alpha:
            rows, cols = self._sample_points(N, H, W, rng)
            images = self._bilinear(images, rows, cols)
        if self.gaussian_noise:
            noise = rng.standard_normal(images.shape, dtype=np.float32)
            images += np.float32(self.gaussian_noise) * noise
        return images if x.ndim == 4 else images[..., 0]

    def _sample_points(self, N, H, W, rng):
        """q = m + R(θ)·(p − m) − s + d(p) for every image and output pixel: two (N, H, W)
        arrays, the row and column coordinates read."""
        mr, mc = (H - 1) / 2, (W - 1) / 2
        r = (np.arange(H, dtype=np.float32) - mr)[None, :, None]  # p − m, (1, H, 1)
        c = (np.arange(W, dtype=np.float32) - mc)[None, None, :]  # (1, 1, W)
        theta = np.deg2rad(rng.uniform(-self.rotation_range, self.rotation_range, N)) \
            if self.rotation_range else np.zeros(N)
        s_row = _shift(rng, self.height_shift_range, H, N)
        s_col = _shift(rng, self.width_shift_range, W, N)
        cos, sin = (np.cos(theta).astype(np.float32)[:, None, None],
                    np.sin(theta).astype(np.float32)[:, None, None])
        rows = mr + cos * r + sin * c - s_row.astype(np.float32)[:, None, None]
        cols = mc - sin * r + cos * c - s_col.astype(np.float32)[:, None, None]
        if self.elastic_alpha:
            d_row, d_col = self._elastic_field(N, H, W, rng)
            rows, cols = rows + d_row, cols + d_col
        return rows, cols

    def _elastic_field(self, N, H, W, rng):
        """d = α · G_σ * U for rows and columns: U ~ uniform(−1, 1), blurred separably as
        K_H @ U @ K_W^T (one batched matmul each side), in float32."""
        K_H, K_W = self._blur_matrix(H), self._blur_matrix(W)
        U = 2 * rng.random((2, N, H, W), dtype=np.float32) - 1
        d = np.float32(self.elastic_alpha) * (K_H @ U @ K_W.T)
        return d[0], d[1]

    def _blur_matrix(self, n):
        key = (n, self.elastic_sigma)
        if key not in self._blur:
            self._blur[key] = gaussian_matrix(n, self.elastic_sigma).astype(np.float32)
        return self._blur[key]

    def _bilinear(self, images, rows, cols):
        """images (N, H, W, C) read at (rows, cols), each (N, H, W), by bilinear interpolation:
        with (r0, c0) = floor(q) and (fr, fc) = q − (r0, c0) in [0, 1],
            top    = x[r0, c0]     + fc · (x[r0, c0 + 1]     − x[r0, c0])
            bottom = x[r0 + 1, c0] + fc · (x[r0 + 1, c0 + 1] − x[r0 + 1, c0])
            x(q)   = top + fr · (bottom − top)
        The images get a one-pixel border of fill_value; a point farther out is moved onto
        it, where all four neighbours are fill_value."""
        N, H, W, C = images.shape
        padded = np.full((N, H + 2, W + 2, C), self.fill_value, dtype=np.float32)
        padded[:, 1:-1, 1:-1] = images
        rows, cols = np.clip(rows, -1, H), np.clip(cols, -1, W)
        r0 = np.minimum(np.floor(rows), H - 1)  # so that r0 + 1 <= H, still in the border
        c0 = np.minimum(np.floor(cols), W - 1)
        fr, fc = (rows - r0)[..., None], (cols - c0)[..., None]
        # index of (r0, c0) in the padded images, flattened over (N, H + 2, W + 2)
        i = (r0 + 1).astype(np.intp) * (W + 2) + (c0 + 1).astype(np.intp)
        i += (np.arange(N) * ((H + 2) * (W + 2)))[:, None, None]
        flat = padded.reshape(-1, C)
        top = flat[i]
        top += fc * (flat[i + 1] - top)
        bottom = flat[i + (W + 2)]
        bottom += fc * (flat[i + (W + 3)] - bottom)
        top += fr * (bottom - top)
        return top

    def get_config(self):
        return {"width_shift_range": self.width_shift_range,
                "height_shift_range": self.height_shift_range,
                "rotation_range": self.rotation_range, "elastic_alpha": self.elastic_alpha,
                "elastic_sigma": self.elastic_sigma, "gaussian_noise": self.gaussian_noise,
                "fill_value": self.fill_value, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _shift(rng, shift_range, size, N):
    """N shifts uniform in ±shift_range; a range < 1 is a fraction of `size` (pixels)."""
    if not shift_range:
        return np.zeros(N)
    limit = shift_range * size if shift_range < 1 else shift_range
    return rng.uniform(-limit, limit, N)
