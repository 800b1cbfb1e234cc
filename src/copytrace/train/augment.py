"""Copy edits done on the GPU, batched: every op draws per-sample parameters and runs on the
whole batch (or on the subset that the op's probability selects), so a step never waits on CPU.

The families follow DISC21/AugLy: crops (down to 20% of the area, aspect jitter), pads and
borders, flips, 90-degree and small rotations, picture-in-picture both ways, image overlays,
text and emoji overlays, screenshot framing, colour jitter, grayscale, blur, noise, JPEG (8x8 DCT
quantisation), and mixup/cutmix. Mixed samples carry their content weights, so the loss can
treat a mix of images i and j as a partial positive of both.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BLUR_SIGMAS = (0.8, 1.5, 2.5)
DOWNSCALE_FACTORS = (0.25, 0.4, 0.6)  # heavy downscaling: shrink by one of these, scale back up


@dataclass(frozen=True)
class EditConfig:
    """Probabilities and ranges of the edits. ``p_*`` are per-sample probabilities."""

    min_area: float = 0.2           # smallest crop, as a fraction of the source area
    aspect: float = 1.5             # crop aspect ratio drawn log-uniformly in [1/a, a]
    p_crop: float = 0.9
    p_hflip: float = 0.5
    p_vflip: float = 0.05
    p_rot90: float = 0.15
    p_rotate: float = 0.2
    max_rotate_deg: float = 30.0
    p_pad: float = 0.25             # zoom out onto a coloured/noise border
    p_pip: float = 0.15             # paste the view, shrunk, into another image
    pip_scale: tuple[float, float] = (0.35, 0.75)  # PiP content size, fraction of the frame
    p_overlay_image: float = 0.15   # paste another image onto the view
    p_screenshot: float = 0.08
    p_text: float = 0.35
    p_emoji: float = 0.25
    p_colour: float = 0.8
    p_gray: float = 0.1
    p_blur: float = 0.2
    p_downscale: float = 0.0        # down to DOWNSCALE_FACTORS of the size and back up
    p_noise: float = 0.15
    p_jpeg: float = 0.4
    p_mixup: float = 0.05
    p_cutmix: float = 0.05

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if name.startswith("p_") and not 0.0 <= value <= 1.0:
                raise ValueError(f"EditConfig.{name}={value}: probabilities must be in [0, 1]")
        if not 0.01 <= self.min_area <= 1.0:
            raise ValueError("EditConfig.min_area must be in [0.01, 1]")
        if self.aspect < 1.0:
            raise ValueError("EditConfig.aspect must be >= 1 (ratio drawn in [1/aspect, aspect])")
        lo, hi = self.pip_scale
        if not 0.05 <= lo <= hi <= 1.0:
            raise ValueError("EditConfig.pip_scale must be (lo, hi) with 0.05 <= lo <= hi <= 1")


# First views of a pair: the same families, less often, never mixed (closer to a reference).
FIRST_VIEW_EDITS = EditConfig(
    min_area=0.3, p_crop=0.8, p_rot90=0.08, p_rotate=0.1, p_pad=0.12, p_pip=0.05,
    p_overlay_image=0.08, p_screenshot=0.04, p_text=0.2, p_emoji=0.12, p_colour=0.6, p_gray=0.05,
    p_blur=0.1, p_noise=0.08, p_jpeg=0.3, p_mixup=0.0, p_cutmix=0.0,
)

# Version 2 second views: more and smaller picture-in-picture (20-60 % of the frame), more
# screenshots and rotations, heavy downscaling, JPEG more often (issue 20).
V2_EDITS = EditConfig(
    p_rotate=0.3, p_pip=0.25, pip_scale=(0.2, 0.6), p_screenshot=0.15, p_jpeg=0.5,
    p_downscale=0.15,
)

LIGHT_EDITS = EditConfig(
    min_area=0.7, aspect=1.15, p_crop=0.5, p_hflip=0.0, p_vflip=0.0, p_rot90=0.0, p_rotate=0.0,
    p_pad=0.0, p_pip=0.0, p_overlay_image=0.0, p_screenshot=0.0, p_text=0.0, p_emoji=0.0,
    p_colour=0.3, p_gray=0.0, p_blur=0.05, p_noise=0.0, p_jpeg=0.3, p_mixup=0.0, p_cutmix=0.0,
)


class Editor:
    """Holds the sprite banks on the device and applies ``EditConfig`` edits to batches."""

    def __init__(self, text_sprites: torch.Tensor, shape_sprites: torch.Tensor) -> None:
        # sprites arrive uint8 [K, 4, h, w]; keep float on the device, straight (non-premultiplied)
        self.text = text_sprites.float() / 255.0
        self.shapes = shape_sprites.float() / 255.0
        self.device = self.text.device
        d = _dct_matrix(8, self.device)
        self._dct2 = torch.kron(d, d)  # row-major 8x8 block -> 64 DCT coefficients
        self._qtables = _jpeg_tables(self.device)

    # --- public -------------------------------------------------------------------------
    def views(
        self, images: torch.Tensor, idx: torch.Tensor, size: int, cfg: EditConfig,
        gen: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Edited views of ``images[idx]``.

        Returns (views float [B, 3, size, size] in [0, 1], content [B, B] weights: row b says
        how much of each batch image's content view b holds; identity unless mixed).
        """
        b = idx.numel()
        x = _to_float(images[idx])
        others = _to_float(images[_randint(0, images.shape[0], (b,), gen, self.device)])
        x = self._geometry(x, others, size, cfg, gen)
        x = self._overlay_images(x, others, cfg, gen)
        x = self._colour(x, cfg, gen)
        x = self._screenshot(x, cfg, gen)
        for _ in range(2):
            x = self._sprites(x, self.text, cfg.p_text / 2, (0.3, 0.9), gen)
        x = self._sprites(x, self.shapes, cfg.p_emoji, (0.12, 0.45), gen)
        x = self._blur(x, cfg.p_blur, gen)
        x = self._downscale(x, cfg.p_downscale, gen)
        x = self._noise(x, cfg.p_noise, gen)
        x = x.clamp(0, 1)
        x = self._jpeg(x, cfg.p_jpeg, gen)
        content = torch.eye(b, device=self.device)
        x, content = self._mix(x, content, cfg, gen)
        return x, content

    # --- geometry -----------------------------------------------------------------------
    def _geometry(self, x, others, size, cfg, gen):
        """Crop/aspect/rotation/flip/rot90 + zoom-out onto colour, noise or another image
        (picture-in-picture), all as one affine resampling per sample."""
        b, dev = x.shape[0], self.device
        u = lambda: _rand(b, gen, dev)  # noqa: E731
        # crop rectangle in normalised source coordinates: half-sizes (w, h), centre (cx, cy)
        crop = u() < cfg.p_crop
        area = torch.where(crop, cfg.min_area + (1 - cfg.min_area) * u(), torch.ones(b, device=dev))
        ratio = torch.exp((2 * u() - 1) * math.log(cfg.aspect))
        w = torch.sqrt(area * ratio).clamp(max=1.0)
        h = torch.sqrt(area / ratio).clamp(max=1.0)
        cx = (2 * u() - 1) * (1 - w)
        cy = (2 * u() - 1) * (1 - h)
        # rotation: small angle and/or quarter turns; flips as sign changes
        ang = torch.where(u() < cfg.p_rotate, (2 * u() - 1) * math.radians(cfg.max_rotate_deg),
                          torch.zeros(b, device=dev))
        quarter = torch.where(u() < cfg.p_rot90, torch.floor(u() * 3) + 1, torch.zeros(b, device=dev))
        ang = ang + quarter * (math.pi / 2)
        fx = torch.where(u() < cfg.p_hflip, -1.0, 1.0)
        fy = torch.where(u() < cfg.p_vflip, -1.0, 1.0)
        # zoom-out: the content occupies [ox - sx, ox + sx] x [oy - sy, oy + sy] of the output
        pad = u() < cfg.p_pad
        pip = (~pad) & (u() < cfg.p_pip)
        shrink = torch.ones(b, device=dev)
        shrink = torch.where(pad, 0.55 + 0.4 * u(), shrink)
        lo, hi = cfg.pip_scale
        shrink = torch.where(pip, lo + (hi - lo) * u(), shrink)
        sx = shrink * torch.where(pad, 0.85 + 0.3 * u(), torch.ones(b, device=dev)).clamp(max=1.0)
        sy = shrink
        ox = (2 * u() - 1) * (1 - sx)
        oy = (2 * u() - 1) * (1 - sy)
        # output (p) -> content (q = (p - o) / s) -> source (c + R diag(w*f) q)
        cos, sin = torch.cos(ang), torch.sin(ang)
        a11, a12 = cos * w * fx / sx, -sin * h * fy / sy
        a21, a22 = sin * w * fx / sx, cos * h * fy / sy
        theta = torch.stack([
            torch.stack([a11, a12, cx - a11 * ox - a12 * oy], 1),
            torch.stack([a21, a22, cy - a21 * ox - a22 * oy], 1),
        ], 1)
        ones = torch.ones_like(x[:, :1])
        grid = F.affine_grid(theta, (b, 4, size, size), align_corners=False)
        out = F.grid_sample(torch.cat([x, ones], 1), grid, mode="bilinear",
                            padding_mode="zeros", align_corners=False)
        img, valid = out[:, :3], out[:, 3:]
        # fill outside the content: plain colour, smooth noise, or another image's crop (PiP)
        colour = _rand((b, 3, 1, 1), gen, dev)
        colour = torch.where(_rand((b, 1, 1, 1), gen, dev) < 0.5, colour.round(), colour)
        noise = F.interpolate(_rand((b, 3, 4, 4), gen, dev), size=(size, size), mode="bilinear")
        fill = torch.where(_rand((b, 1, 1, 1), gen, dev) < 0.8, colour.expand_as(img), noise)
        background = _random_crops(others, size, 0.3, gen)
        fill = torch.where(pip[:, None, None, None], background, fill)
        return img * valid + fill * (1 - valid)

    def _overlay_images(self, x, others, cfg, gen):
        """Another image pasted (opaque or translucent) over part of the view."""
        n, size = x.shape[0], x.shape[-1]
        on = _mask(n, cfg.p_overlay_image, gen, self.device)
        src = torch.cat([others, torch.ones_like(others[:, :1])], 1)
        scale = 0.25 + 0.3 * _rand(n, gen, self.device)
        layer = _place(src, size, scale, scale * (0.7 + 0.6 * _rand(n, gen, self.device)),
                       torch.zeros(n, device=self.device), gen)
        opacity = torch.where(_rand(n, gen, self.device) < 0.5, 1.0,
                              0.4 + 0.6 * _rand(n, gen, self.device))
        return _composite(x, layer, opacity * on)

    def _screenshot(self, x, cfg, gen):
        """Screenshot-like framing: content shrunk under a UI bar, bars carry text."""
        n, size, dev = x.shape[0], x.shape[-1], self.device
        on = _mask(n, cfg.p_screenshot, gen, dev)
        top = 0.08 + 0.14 * _rand(n, gen, dev)      # bar heights, fraction of the frame
        bottom = 0.12 * _rand(n, gen, dev)
        side = 0.06 * _rand(n, gen, dev)
        content_h = 1 - top - bottom
        theta = torch.zeros(n, 2, 3, device=dev)
        theta[:, 0, 0] = 1 / (1 - 2 * side)
        theta[:, 1, 1] = 1 / content_h
        theta[:, 1, 2] = -(top - bottom) / content_h  # content centre sits at (top - bottom)
        grid = F.affine_grid(theta, (n, 4, size, size), align_corners=False)
        src = torch.cat([x, torch.ones_like(x[:, :1])], 1)
        out = F.grid_sample(src, grid, padding_mode="zeros", align_corners=False)
        shade = _rand((n, 1, 1, 1), gen, dev)
        ui = torch.where(shade < 0.5, 0.9 + 0.1 * shade, 0.15 * shade).expand(n, 3, 1, 1)
        ui = ui + 0.05 * _rand((n, 3, 1, 1), gen, dev)
        ys = (torch.arange(size, device=dev).float() + 0.5) / size
        bar = (ys[None, :] < top[:, None] * 0.6).float()[:, None, :, None]
        bar_colour = _rand((n, 3, 1, 1), gen, dev)
        frame = ui * (1 - bar) + bar_colour * bar
        y = out[:, :3] * out[:, 3:] + frame * (1 - out[:, 3:])
        # text in the top bar
        k = _randint(0, self.text.shape[0], (n,), gen, dev)
        width = 0.3 + 0.4 * _rand(n, gen, dev)
        height = top * 0.5
        cx = -1 + width + (2 - 2 * width) * _rand(n, gen, dev)
        cy = -1 + top
        layer = _place_at(self.text[k], size, width, height, cx, cy, torch.zeros(n, device=dev))
        y = _composite(y, layer, torch.ones(n, device=dev))
        return torch.where(on[:, None, None, None] > 0, y, x)

    def _sprites(self, x, bank, p, scale_range, gen):
        n, size, dev = x.shape[0], x.shape[-1], self.device
        on = _mask(n, p, gen, dev)
        k = _randint(0, bank.shape[0], (n,), gen, dev)
        lo, hi = scale_range
        w = lo + (hi - lo) * _rand(n, gen, dev)
        h = w * bank.shape[2] / bank.shape[3] * (0.7 + 0.6 * _rand(n, gen, dev))
        ang = torch.where(_rand(n, gen, dev) < 0.3, (2 * _rand(n, gen, dev) - 1) * 0.5,
                          torch.zeros(n, device=dev))
        layer = _place(bank[k], size, w, h, ang, gen)
        # recolour half of the sprites so colours are not tied to the bank
        tint = torch.where(_rand((n, 1, 1, 1), gen, dev) < 0.5, _rand((n, 3, 1, 1), gen, dev),
                           torch.ones(n, 3, 1, 1, device=dev))
        layer = torch.cat([layer[:, :3] * tint, layer[:, 3:]], 1)
        opacity = torch.where(_rand(n, gen, dev) < 0.6, 1.0, 0.4 + 0.6 * _rand(n, gen, dev))
        return _composite(x, layer, opacity * on)

    # --- photometric --------------------------------------------------------------------
    def _colour(self, x, cfg, gen):
        """Brightness, contrast, saturation (grayscale at 0) and hue as one 3x3 map per sample."""
        b, dev = x.shape[0], self.device
        on = (_rand(b, gen, dev) < cfg.p_colour).float()
        bright = 1 + on * (_rand(b, gen, dev) - 0.5) * 0.8
        contrast = 1 + on * (_rand(b, gen, dev) - 0.5) * 0.8
        sat = 1 + on * (_rand(b, gen, dev) - 0.5) * 1.2
        sat = torch.where(_rand(b, gen, dev) < cfg.p_gray, torch.zeros_like(sat), sat)
        hue = on * (_rand(b, gen, dev) - 0.5) * 0.6 * math.pi
        luma = torch.tensor([0.299, 0.587, 0.114], device=dev)
        gray = luma[None, :].expand(3, 3)
        eye = torch.eye(3, device=dev)
        m_sat = sat[:, None, None] * eye + (1 - sat[:, None, None]) * gray
        # hue: rotation about the gray axis (Rodrigues)
        k = 1 / math.sqrt(3)
        kx = torch.tensor([[0.0, -k, k], [k, 0.0, -k], [-k, k, 0.0]], device=dev)
        c, s = torch.cos(hue)[:, None, None], torch.sin(hue)[:, None, None]
        m_hue = eye + s * kx + (1 - c) * (kx @ kx)
        m = bright[:, None, None] * (m_sat @ m_hue)
        y = torch.einsum("bij,bjhw->bihw", m, x)
        mean = (y * luma[None, :, None, None]).sum(1, keepdim=True).mean((2, 3), keepdim=True)
        return ((y - mean) * contrast[:, None, None, None] + mean).clamp(0, 1)

    def _blur(self, x, p, gen):
        """Gaussian blur at one of a few sigmas per sample: a shared depthwise kernel per level
        is far faster on the GPU than one grouped convolution with a kernel per sample."""
        n, dev = x.shape[0], self.device
        on = _mask(n, p, gen, dev)
        level = _randint(0, len(BLUR_SIGMAS), (n,), gen, dev)
        t = torch.arange(-6, 7, device=dev).float()
        out = x
        for i, sigma in enumerate(BLUR_SIGMAS):
            k = torch.exp(-(t**2) / (2 * sigma**2))
            k = (k / k.sum()).expand(3, 13)
            y = F.conv2d(F.pad(x, (6, 6, 0, 0), mode="replicate"), k[:, None, None, :], groups=3)
            y = F.conv2d(F.pad(y, (0, 0, 6, 6), mode="replicate"), k[:, None, :, None], groups=3)
            pick = (on > 0) & (level == i)
            out = torch.where(pick[:, None, None, None], y, out)
        return out

    def _downscale(self, x, p, gen):
        """Resolution loss: shrink to one of a few factors per sample and scale back up."""
        if p <= 0:
            return x
        n, size, dev = x.shape[0], x.shape[-1], self.device
        on = _mask(n, p, gen, dev)
        level = _randint(0, len(DOWNSCALE_FACTORS), (n,), gen, dev)
        out = x
        for i, f in enumerate(DOWNSCALE_FACTORS):
            small = max(8, round(size * f))
            y = F.interpolate(x, size=(small, small), mode="bilinear", antialias=True,
                              align_corners=False)
            y = F.interpolate(y, size=(size, size), mode="bilinear", align_corners=False)
            pick = (on > 0) & (level == i)
            out = torch.where(pick[:, None, None, None], y, out)
        return out

    def _noise(self, x, p, gen):
        n = x.shape[0]
        on = _mask(n, p, gen, self.device)[:, None, None, None]
        sigma = (0.01 + 0.07 * _rand((n, 1, 1, 1), gen, self.device)) * on
        return x + sigma * torch.randn(x.shape, generator=gen, device=self.device)

    def _jpeg(self, x, p, gen):
        """JPEG-like: YCbCr, 2x2 chroma subsampling, 8x8 DCT quantised with the standard
        tables scaled to a quality drawn in [8, 90]."""
        n, size = x.shape[0], x.shape[-1]
        if size % 16:
            return x
        on = _mask(n, p, gen, self.device)
        out = self.jpeg(x, 8 + 82 * _rand(n, gen, self.device))
        return torch.where(on[:, None, None, None] > 0, out, x)

    def jpeg(self, x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        """x [n, 3, H, W] in [0, 1] (H, W multiples of 16), quality [n] in 1..100."""
        scale = torch.where(quality < 50, 5000 / quality, 200 - 2 * quality)
        q = ((self._qtables[None] * scale[:, None, None, None] + 50) / 100).floor().clamp(1, 255)
        rgb = x * 255
        r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
        yy = 0.299 * r + 0.587 * g + 0.114 * b - 128
        cb = -0.168736 * r - 0.331264 * g + 0.5 * b
        cr = 0.5 * r - 0.418688 * g - 0.081312 * b
        yy = self._dct_quant(yy, q[:, 0])
        chroma = F.avg_pool2d(torch.stack([cb, cr], 1), 2)
        cb = self._dct_quant(chroma[:, 0], q[:, 1])
        cr = self._dct_quant(chroma[:, 1], q[:, 1])
        chroma = F.interpolate(torch.stack([cb, cr], 1), scale_factor=2, mode="bilinear")
        cb, cr = chroma[:, 0], chroma[:, 1]
        yy = yy + 128
        out = torch.stack([yy + 1.402 * cr, yy - 0.344136 * cb - 0.714136 * cr,
                           yy + 1.772 * cb], 1)
        return (out / 255).clamp(0, 1)

    def _dct_quant(self, plane, q):
        """plane [n, H, W], q [n, 8, 8] -> plane after DCT, quantisation and inverse DCT.
        The 2-D DCT of a block is one 64x64 matrix (kron(D, D)): one large GEMM per pass."""
        n, h, w = plane.shape
        blocks = plane.reshape(n, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)
        flat = blocks.reshape(n, -1, 64)
        coef = flat @ self._dct2.T
        qf = q.reshape(n, 1, 64)
        coef = torch.round(coef / qf) * qf
        back = (coef @ self._dct2).reshape(n, h // 8, w // 8, 8, 8)
        return back.permute(0, 1, 3, 2, 4).reshape(n, h, w)

    # --- mixing -------------------------------------------------------------------------
    def _mix(self, x, content, cfg, gen):
        """Mixup and cutmix with a random partner; ``content`` records the proportions."""
        b, dev = x.shape[0], self.device
        if b < 2:
            return x, content
        partner = (torch.arange(b, device=dev) + _randint(1, b, (b,), gen, dev)) % b
        r = _rand(b, gen, dev)
        mixup = r < cfg.p_mixup
        cutmix = (r >= cfg.p_mixup) & (r < cfg.p_mixup + cfg.p_cutmix)
        size = x.shape[-1]
        lam = 0.55 + 0.35 * _rand(b, gen, dev)  # share of the view's own image
        # cutmix box with area 1 - lam
        side = torch.sqrt(1 - lam)
        x0 = _rand(b, gen, dev) * (1 - side)
        y0 = _rand(b, gen, dev) * (1 - side)
        pos = (torch.arange(size, device=dev).float() + 0.5) / size
        in_x = (pos[None] >= x0[:, None]) & (pos[None] < (x0 + side)[:, None])
        in_y = (pos[None] >= y0[:, None]) & (pos[None] < (y0 + side)[:, None])
        box = (in_y[:, :, None] & in_x[:, None, :]).float()[:, None]
        lam_cut = 1 - box.mean((1, 2, 3))
        alpha = torch.where(mixup, 1 - lam, torch.zeros(b, device=dev))[:, None, None, None]
        alpha = torch.where(cutmix[:, None, None, None], box, alpha)
        xp = x[partner]
        x = x * (1 - alpha) + xp * alpha
        own = torch.where(mixup, lam, torch.where(cutmix, lam_cut, torch.ones(b, device=dev)))
        content = content * own[:, None]
        content[torch.arange(b, device=dev), partner] += 1 - own
        return x, content


# --- helpers ----------------------------------------------------------------------------
def _to_float(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 255.0


def _rand(shape, gen, device) -> torch.Tensor:
    return torch.rand(shape, generator=gen, device=device)


def _randint(lo: int, hi: int, shape, gen, device) -> torch.Tensor:
    return torch.randint(lo, hi, shape, generator=gen, device=device)


def _mask(b: int, p: float, gen, device) -> torch.Tensor:
    """float [b]: 1 where the op applies. Ops run on the whole batch and blend by this mask,
    which costs some arithmetic but never makes the host wait for the GPU (no nonzero/sync)."""
    return (_rand(b, gen, device) < p).float()


def _random_crops(x: torch.Tensor, size: int, min_area: float, gen) -> torch.Tensor:
    b, dev = x.shape[0], x.device
    area = min_area + (1 - min_area) * _rand(b, gen, dev)
    s = torch.sqrt(area)
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0] = s
    theta[:, 1, 1] = s
    theta[:, 0, 2] = (2 * _rand(b, gen, dev) - 1) * (1 - s)
    theta[:, 1, 2] = (2 * _rand(b, gen, dev) - 1) * (1 - s)
    grid = F.affine_grid(theta, (b, 3, size, size), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False)


def _place(src, size, w, h, ang, gen):
    """Resample RGBA ``src`` [n, 4, hs, ws] into an output canvas, occupying half-extents (w, h)
    (normalised) at a random centre that keeps most of it inside."""
    n, dev = src.shape[0], src.device
    cx = (2 * _rand(n, gen, dev) - 1) * (1 - 0.5 * w)
    cy = (2 * _rand(n, gen, dev) - 1) * (1 - 0.5 * h)
    return _place_at(src, size, w, h, cx, cy, ang)


def _place_at(src, size, w, h, cx, cy, ang):
    n = src.shape[0]
    cos, sin = torch.cos(ang), torch.sin(ang)
    # output p -> sprite coords: R(-ang) (p - c) / (w, h)
    theta = torch.stack([
        torch.stack([cos / w, sin / w, -(cos * cx + sin * cy) / w], 1),
        torch.stack([-sin / h, cos / h, -(-sin * cx + cos * cy) / h], 1),
    ], 1)
    grid = F.affine_grid(theta, (n, 4, size, size), align_corners=False)
    return F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _composite(x, layer, opacity):
    a = layer[:, 3:] * opacity[:, None, None, None]
    return x * (1 - a) + layer[:, :3] * a


def _dct_matrix(n: int, device) -> torch.Tensor:
    k = torch.arange(n, dtype=torch.float32)
    d = torch.cos(math.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n)) * math.sqrt(2 / n)
    d[0] /= math.sqrt(2)
    return d.to(device)


def _jpeg_tables(device) -> torch.Tensor:
    luma = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40,
            57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35,
            55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112,
            100, 103, 99]
    chroma = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99,
              99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32
    return torch.tensor([luma, chroma], dtype=torch.float32, device=device).reshape(2, 8, 8)


def normalise(x: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    m = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s

